// bagnet evidence: the per-patch logit map of one image, saved as a NumPy array.
#include "commands.h"
#include "options.h"
#include "progress.h"

#include <bagnet/json_text.h>
#include <bagnet/evidence.h>
#include <bagnet/labels.h>
#include <bagnet/npy.h>

#include <nlohmann/json.hpp>

#include <iostream>

namespace bagnet::cli {

int run_evidence(int argc, char** argv) {
  cxxopts::Options options("bagnet evidence",
                           "Compute the BagNet evidence map of an image: for each requested class, the logit of "
                           "every q x q patch on the model's native grid (every 8 px for the official BagNets), written as a float32 .npy array [K, H', W'] "
                           "(K classes in the order asked). With native stride s, cell (i, j) sees model-input rows [s*i, s*i+q) "
                           "and columns [s*j, s*j+q); the mean over all cells is the image logit.");
  options.positional_help("IMAGE");
  add_model_flags(options);
  add_precision_flag(options);
  add_image_flags(options);
  options.add_options("Output")
      ("stride", "native: the model's own patch map (stride 8 for the official BagNets, 2 for the bundled model); "
                 "N below it (1, 2, 4, ...): the dense map (patch centred on every pixel, zero-padded) sampled "
                 "every N pixels", cxxopts::value<std::string>()->default_value("native"))
      ("method", "dense maps: shared (every layer once per position; fast, exact) or patchwise (the authors' patch-by-patch reference, slow)",
       cxxopts::value<std::string>()->default_value("shared"))
      ("max-memory", "dense maps: memory budget in MB for one tile of activations",
       cxxopts::value<int>()->default_value("1536"))
      ("class", "classes: all, or a comma list of indices and/or names", cxxopts::value<std::string>()->default_value("all"))
      ("o,output", "output .npy file (also --npy)", cxxopts::value<std::string>())
      ("json", "print the map's geometry and per-class totals as JSON")
      ("image", "input image", cxxopts::value<std::vector<std::string>>());
  add_help_flag(options);
  options.parse_positional({"image"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv,
                     "  bagnet evidence cat.jpg --weights bagnet32-2ddd53ed.pth.tar --class 281,tabby -o cat.npy\n"
                     "  bagnet evidence cat.jpg --weights bagnet32-2ddd53ed.pth.tar --class all -o all.npy --json\n"
                     "  bagnet evidence cat.jpg --weights bagnet32-2ddd53ed.pth.tar --class tabby --stride 1 -o dense.npy\n"
                     "  python3 -c \"import numpy; print(numpy.load('cat.npy').shape)\"\n",
                     parsed, {{"npy", "output"}}))
    return kExitOk;
  if (!parsed.count("image")) throw UsageError("no input image given");
  const auto images = parsed["image"].as<std::vector<std::string>>();
  if (images.size() != 1) throw UsageError("evidence takes exactly one image, got " + std::to_string(images.size()));
  if (!parsed.count("output")) throw UsageError("-o OUT.npy is required");
  const std::string out_path = parsed["output"].as<std::string>();
  ModelFlags model_flags = read_model_flags(parsed);
  model_flags.precision = read_precision_flag(parsed);
  const ImageFlags image_flags = read_image_flags(parsed);

  LoadedModel model = open_model(model_flags);
  const auto names = model_class_names(model, model_flags.labels);
  EvidenceOptions evidence;
  evidence.classes = parse_class_list(parsed["class"].as<std::string>(), names);
  const ModelInput input = load_image(images[0], make_input_spec(image_flags, model));
  const int64_t stride = resolve_map_stride(model.arch, parsed["stride"].as<std::string>());
  const bool native = stride == total_stride(model.arch);
  const std::string method = parsed["method"].as<std::string>();
  if (method != "shared" && method != "patchwise") throw UsageError("--method must be shared or patchwise, got '" + method + "'");
  if (native && method != "shared") throw UsageError("--method applies to dense maps (a --stride below the native " +
                                                     std::to_string(stride) + ")");
  const torch::Tensor batch = input.tensor.unsqueeze(0);
  const auto& t = input.transform;
  torch::Tensor logits, totals;
  std::vector<int64_t> classes;
  nlohmann::json geometry;
  std::string description;
  if (native) {
    const EvidenceMap map = compute_evidence(model.net, batch, evidence);
    const MapGeometry& g = map.geometry;
    logits = map.logits[0];
    totals = map.image_logits()[0];
    classes = map.classes;
    geometry = {{"kind", "native"}, {"stride", g.stride}, {"receptive_field", g.patch},
                {"cell_box", "cell (i, j) covers model-input rows [stride*i, stride*i+q), cols [stride*j, stride*j+q)"}};
    description = "native map, stride " + std::to_string(g.stride) + ", q " + std::to_string(g.patch) +
                  "; cell (i, j) sees model-input rows [" + std::to_string(g.stride) + "i, " + std::to_string(g.stride) +
                  "i+" + std::to_string(g.patch) + "), cols [" + std::to_string(g.stride) + "j, " +
                  std::to_string(g.stride) + "j+" + std::to_string(g.patch) + ")";
  } else {
    DenseOptions dense;
    dense.stride = stride;
    dense.classes = evidence.classes;
    dense.method = method == "patchwise" ? DenseMethod::Patchwise : DenseMethod::Shared;
    dense.max_memory_mb = parsed["max-memory"].as<int>();
    ProgressBar bar("dense map");
    dense.on_progress = bar.callback();
    const DenseMap map = compute_dense_evidence(model.net, batch, dense);
    logits = map.logits[0];
    // The dense map's mean is not the image logit (it includes padded patches); report the
    // native image logit beside it.
    totals = compute_evidence(model.net, batch, evidence).image_logits()[0];
    classes = map.classes;
    const int64_t half = (map.patch - 1) / 2;
    geometry = {{"kind", "dense"}, {"stride", map.stride}, {"receptive_field", map.patch}, {"method", method},
                {"tiles", map.tiles},
                {"cell_box", "cell (i, j) is the logit of the q x q patch centred on model-input pixel (stride*i, "
                             "stride*j), i.e. rows [stride*i-(q-1)/2, stride*i+(q-1)/2], the image zero-padded"}};
    description = "dense map sampled every " + std::to_string(stride) + " px, q " + std::to_string(map.patch) +
                  "; cell (i, j) is the patch centred on model-input pixel (" + std::to_string(stride) + "i, " +
                  std::to_string(stride) + "j), rows [" + std::to_string(stride) + "i-" + std::to_string(half) + ", " +
                  std::to_string(stride) + "i+" + std::to_string(half) + "], zero padding outside the image";
  }
  save_npy(out_path, logits);

  if (parsed.count("json")) {
    nlohmann::json class_list = nlohmann::json::array();
    for (size_t k = 0; k < classes.size(); ++k)
      class_list.push_back({{"class", classes[k]}, {"name", names[classes[k]]},
                            {"logit", totals[static_cast<int64_t>(k)].item<float>()}});
    nlohmann::json out = {
        {"npy", json_path(out_path)},
        {"image", json_path(images[0])},
        {"shape", logits.sizes().vec()},
        {"stride", stride},
        {"receptive_field", geometry["receptive_field"]},
        {"geometry", geometry},
        {"input_size", {t.input_height, t.input_width}},
        {"original_size", {t.original_height, t.original_width}},
        {"resized_size", {t.resized_height, t.resized_width}},
        {"crop_offset", {t.crop_top, t.crop_left}},
        {"classes", class_list}};
    std::cout << to_json_text(out, 2) << "\n";
    return kExitOk;
  }
  std::cout << "wrote " << out_path << ": float32 [" << logits.size(0) << ", " << logits.size(1) << ", "
            << logits.size(2) << "], " << description << ", " << t.input_height << "x" << t.input_width << " input\n";
  for (size_t k = 0; k < classes.size() && k < 10; ++k)
    std::cout << "  class " << classes[k] << " " << names[classes[k]] << ": image logit (mean of native cells) "
              << fixed(totals[static_cast<int64_t>(k)].item<float>(), 4) << "\n";
  if (classes.size() > 10) std::cout << "  ... " << classes.size() - 10 << " more classes\n";
  return kExitOk;
}

}  // namespace bagnet::cli
