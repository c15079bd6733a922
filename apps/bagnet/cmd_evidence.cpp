// bagnet evidence: the per-patch logit map of one image, saved as a NumPy array.
#include "commands.h"
#include "options.h"

#include <bagnet/evidence.h>
#include <bagnet/labels.h>
#include <bagnet/npy.h>

#include <nlohmann/json.hpp>

#include <iostream>

namespace bagnet::cli {

int run_evidence(int argc, char** argv) {
  cxxopts::Options options("bagnet evidence",
                           "Compute the BagNet evidence map of an image: for each requested class, the logit of "
                           "every q x q patch on the stride-8 grid, written as a float32 .npy array [K, H', W'] "
                           "(K classes in the order asked). Cell (i, j) sees model-input rows [8i, 8i+q) and "
                           "columns [8j, 8j+q); the mean over all cells is the image logit.");
  options.positional_help("IMAGE");
  add_model_flags(options);
  add_image_flags(options);
  options.add_options("Output")
      ("class", "classes: all, or a comma list of indices and/or names", cxxopts::value<std::string>()->default_value("all"))
      ("npy", "output .npy file", cxxopts::value<std::string>())
      ("json", "print the map's geometry and per-class totals as JSON")
      ("image", "input image", cxxopts::value<std::vector<std::string>>());
  add_help_flag(options);
  options.parse_positional({"image"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv,
                     "  bagnet evidence cat.jpg --weights bagnet32-2ddd53ed.pth.tar --class 281,tabby --npy cat.npy\n"
                     "  bagnet evidence cat.jpg --weights bagnet32-2ddd53ed.pth.tar --class all --npy all.npy --json\n"
                     "  python3 -c \"import numpy; print(numpy.load('cat.npy').shape)\"\n",
                     parsed))
    return kExitOk;
  if (!parsed.count("image")) throw UsageError("no input image given");
  const auto images = parsed["image"].as<std::vector<std::string>>();
  if (images.size() != 1) throw UsageError("evidence takes exactly one image, got " + std::to_string(images.size()));
  if (!parsed.count("npy")) throw UsageError("--npy OUT.npy is required");
  const std::string out_path = parsed["npy"].as<std::string>();
  const ModelFlags model_flags = read_model_flags(parsed);
  const ImageFlags image_flags = read_image_flags(parsed);

  LoadedModel model = open_model(model_flags);
  const auto names = class_names_for(model.arch.num_classes, model_flags.labels);
  EvidenceOptions evidence;
  evidence.classes = parse_class_list(parsed["class"].as<std::string>(), names);
  const ModelInput input = load_image(images[0], make_preprocess(image_flags, model.arch));
  const EvidenceMap map = compute_evidence(model.net, input.tensor.unsqueeze(0), evidence);
  save_npy(out_path, map.logits[0]);

  const MapGeometry& g = map.geometry;
  const auto totals = map.image_logits()[0];
  if (parsed.count("json")) {
    nlohmann::json classes = nlohmann::json::array();
    for (size_t k = 0; k < map.classes.size(); ++k)
      classes.push_back({{"class", map.classes[k]}, {"name", names[map.classes[k]]},
                         {"logit", totals[static_cast<int64_t>(k)].item<float>()}});
    const auto& t = input.transform;
    nlohmann::json out = {
        {"npy", out_path},
        {"image", images[0]},
        {"shape", {map.classes.size(), g.rows, g.cols}},
        {"stride", g.stride},
        {"receptive_field", g.patch},
        {"cell_box", "cell (i, j) covers model-input rows [stride*i, stride*i+q), cols [stride*j, stride*j+q)"},
        {"input_size", {t.input_height, t.input_width}},
        {"original_size", {t.original_height, t.original_width}},
        {"resized_size", {t.resized_height, t.resized_width}},
        {"crop_offset", {t.crop_top, t.crop_left}},
        {"classes", classes}};
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "wrote " << out_path << ": float32 [" << map.classes.size() << ", " << g.rows << ", " << g.cols
            << "], stride " << g.stride << ", q " << g.patch << "; cell (i, j) sees model-input rows [" << g.stride
            << "i, " << g.stride << "i+" << g.patch << "), cols [" << g.stride << "j, " << g.stride << "j+" << g.patch
            << ") of the " << input.transform.input_height << "x" << input.transform.input_width << " input\n";
  for (size_t k = 0; k < map.classes.size() && k < 10; ++k)
    std::cout << "  class " << map.classes[k] << " " << names[map.classes[k]] << ": image logit (mean of cells) "
              << fixed(totals[static_cast<int64_t>(k)].item<float>(), 4) << "\n";
  if (map.classes.size() > 10) std::cout << "  ... " << map.classes.size() - 10 << " more classes\n";
  return kExitOk;
}

}  // namespace bagnet::cli
