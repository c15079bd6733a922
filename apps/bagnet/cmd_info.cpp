// bagnet info: what a checkpoint holds and the geometry of the model it describes.
#include "commands.h"
#include "options.h"

#include <bagnet/json_text.h>
#include <bagnet/labels.h>
#include <bagnet/runtime.h>

#include <nlohmann/json.hpp>

#include <iostream>

namespace bagnet::cli {

int run_info(int argc, char** argv) {
  cxxopts::Options options("bagnet info", "Describe a BagNet checkpoint: detected architecture, receptive field q, "
                                          "stride, classes, parameter count and the file's SHA-256.");
  options.positional_help("[FILE]");
  add_model_flags(options);
  options.add_options("Output")("json", "print JSON instead of text")
      ("file", "the checkpoint or model file (same as --weights)", cxxopts::value<std::string>());
  add_help_flag(options);
  options.parse_positional({"file"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv,
                     "  bagnet info bagnet32-2ddd53ed.pth.tar\n"
                     "  bagnet info --weights model.pt --arch bagnet17 --json\n"
                     "  bagnet info            (the bundled default model)\n",
                     parsed))
    return kExitOk;
  ModelFlags flags = read_model_flags(parsed);
  if (parsed.count("file")) {
    if (parsed.count("weights")) throw UsageError("give the file either as FILE or with --weights, not both");
    flags.weights = parsed["file"].as<std::string>();
  }
  flags.device = "cpu";  // describing a file needs no accelerator
  const LoadedModel model = open_model(flags);
  const Arch& arch = model.arch;
  int64_t parameters = 0;
  for (const auto& p : model.net->parameters()) parameters += p.numel();
  const MapGeometry g224 = map_geometry(arch, 224, 224);

  nlohmann::json info = {
      {"file", json_path(model.path)},
      {"sha256", model.checkpoint.sha256},
      {"file_size", model.checkpoint.file_size},
      {"format", format_name(model.checkpoint.format)},
      {"wrapper_key", model.checkpoint.wrapper_key},
      {"removed_prefix", model.checkpoint.removed_prefix},
      {"architecture", arch.name},
      {"arch_spec", arch_to_spec(arch)},
      {"arch_detected", flags.arch.empty()},
      {"blocks", arch.blocks},
      {"kernel3", arch.kernel3},
      {"strides", arch.strides},
      {"widths", arch.widths},
      {"in_channels", arch.in_channels},
      {"receptive_field", receptive_field(arch)},
      {"stride", total_stride(arch)},
      {"classes", arch.num_classes},
      {"parameters", parameters},
      {"map_size_224", {g224.rows, g224.cols}},
      {"torch_version", torch_version()},
  };
  nlohmann::json metadata = nlohmann::json::object();
  for (const auto& [key, value] : model.checkpoint.metadata)
    if (key != kModelMetaKey) metadata[key] = value;
  info["metadata"] = metadata;
  if (model.meta) info["model"] = nlohmann::json::parse(meta_to_json(*model.meta));

  if (parsed.count("json")) {
    std::cout << to_json_text(info, 2) << "\n";
    return kExitOk;
  }
  std::cout << "file:           " << model.path << "\n"
            << "sha256:         " << model.checkpoint.sha256 << "\n"
            << "format:         " << format_name(model.checkpoint.format)
            << (model.checkpoint.wrapper_key.empty() ? "" : ", state dict under '" + model.checkpoint.wrapper_key + "'")
            << (model.checkpoint.removed_prefix.empty() ? "" : ", prefix '" + model.checkpoint.removed_prefix + "' removed")
            << "\n"
            << "architecture:   " << arch.name << (!flags.arch.empty() ? " (given)" : model.meta ? " (from the model file)" : " (detected)") << "  "
            << arch_to_spec(arch) << "\n"
            << "receptive field q = " << receptive_field(arch) << " px, stride " << total_stride(arch)
            << " px, 224x224 input -> " << g224.rows << "x" << g224.cols << " patch map\n"
            << "classes:        " << arch.num_classes << "\n"
            << "parameters:     " << parameters << "\n";
  for (const auto& [key, value] : model.checkpoint.metadata)
    if (key != kModelMetaKey) std::cout << "metadata:       " << key << " = " << value << "\n";
  if (model.meta) {
    const ModelMeta& m = *model.meta;
    std::cout << "model file:     bagnet-lens (docs/model-format.md)\nclass names:   ";
    for (const auto& name : m.class_names) std::cout << " " << name;
    std::cout << "\ninput:          " << m.input.channels << " channel(s), resize "
              << (m.input.resize ? std::to_string(*m.input.resize) : "none") << ", crop "
              << (m.input.crop ? std::to_string(*m.input.crop) : "none") << ", mean";
    for (float v : m.input.mean) std::cout << " " << v;
    std::cout << ", std";
    for (float v : m.input.std) std::cout << " " << v;
    const auto training = nlohmann::json::parse(m.training);
    if (training.contains("command")) std::cout << "\ntrained with:   " << training["command"].get<std::string>();
    if (training.contains("final") && training["final"].contains("val_top1") && !training["final"]["val_top1"].is_null())
      std::cout << "\nvalidation:     top-1 " << fixed(100 * training["final"]["val_top1"].get<double>(), 2) << "% on "
                << training.value("validation", std::string("?"));
    std::cout << "\n";
  }
  return kExitOk;
}

}  // namespace bagnet::cli
