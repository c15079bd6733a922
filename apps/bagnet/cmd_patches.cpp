// bagnet patches: the most informative patches per class over images or a dataset (the BagNet
// paper's "most predictive patches" figure): a grid PNG per class and JSON listing every patch.
#include "batch_pipeline.h"
#include "commands.h"
#include "options.h"
#include "progress.h"
#include "sample_loop.h"
#include "samples.h"

#include <bagnet/json_text.h>
#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/evidence.h>
#include <bagnet/labels.h>
#include <bagnet/patch_grid.h>
#include <bagnet/ranking.h>
#include <bagnet/report.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <numeric>

namespace bagnet::cli {

namespace {

namespace fs = std::filesystem;

std::string grid_name(int64_t cls) {
  std::string digits = std::to_string(cls);
  return "class_" + std::string(digits.size() < 4 ? 4 - digits.size() : 0, '0') + digits + ".png";
}

std::string short_source(const std::string& source) {
  const size_t hash = source.rfind('#');
  const std::string file = fs::path(source.substr(0, hash)).filename().string();
  return hash == std::string::npos ? file : file + source.substr(hash);
}

// One patch of patches.json.
nlohmann::json patch_record(const RankedPatch& p, size_t rank, const SampleInfo& info, const BoxF& box) {
  return {{"rank", static_cast<int64_t>(rank + 1)},
          {"sample", p.sample},
          {"source", json_path(info.source)},
          {"label", info.label ? nlohmann::json(*info.label) : nlohmann::json(nullptr)},
          {"cell", {p.patch.row, p.patch.col}},
          {"logit", p.patch.value},
          {"box_input", {p.patch.box.top, p.patch.box.left, p.patch.box.bottom(), p.patch.box.right()}},
          {"box_original", {box.top, box.left, box.bottom, box.right}}};
}

}  // namespace

int run_patches(int argc, char** argv) {
  cxxopts::Options options(
      "bagnet patches",
      "Find the most informative patches per class: over all inputs (images or datasets), the k patches with "
      "the highest (or lowest, --sign negative) logit for each class, kept in a bounded top-k while streaming. "
      "Writes OUTDIR/class_NNNN.png (crops from the original images, labelled with logit and source) and "
      "OUTDIR/patches.json listing every patch with its box in model-input and original pixels.");
  options.positional_help("IMAGE|DATASET...");
  add_model_flags(options);
  add_precision_flag(options);
  add_image_flags(options);
  add_ranking_flags(options);
  add_batch_flags(options);
  options.add_options("Patches")
      ("o,output", "output folder", cxxopts::value<std::string>())
      ("k,topk", "patches per class", cxxopts::value<int>()->default_value("16"))
      ("per-image", "at most this many patches of one image per class (0: no limit)",
       cxxopts::value<int>()->default_value("1"))
      ("class", "classes: all, or a comma list of indices and/or names", cxxopts::value<std::string>()->default_value("all"))
      ("sign", "positive: evidence for the class; negative: evidence against it",
       cxxopts::value<std::string>()->default_value("positive"))
      ("columns", "tiles per grid row", cxxopts::value<int>()->default_value("8"))
      ("overwrite", "write into an output folder that is not empty (files of the same names are replaced)")
      ("inputs", "images or datasets", cxxopts::value<std::vector<std::string>>());
  add_help_flag(options);
  options.parse_positional({"inputs"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv,
                     "  bagnet patches t10k-images-idx3-ubyte.gz --weights model.pt -o out/patches -k 24\n"
                     "  bagnet patches cat.jpg --weights bagnet32-2ddd53ed.pth.tar -o out/cat --class tabby --per-image 0 "
                     "--max-iou 0.2\n"
                     "  bagnet patches val/ --weights model.pt -o out/against --sign negative --class 0,3\n",
                     parsed))
    return kExitOk;
  if (!parsed.count("inputs")) throw UsageError("no input images or datasets given");
  if (!parsed.count("output")) throw UsageError("-o OUTDIR is required");
  ModelFlags model_flags = read_model_flags(parsed);
  model_flags.precision = read_precision_flag(parsed);
  const ImageFlags image_flags = read_image_flags(parsed);
  const RankOptions suppression = read_ranking_flags(parsed);
  const BatchFlags batching = read_batch_flags(parsed);
  const int k = parsed["topk"].as<int>(), per_image = parsed["per-image"].as<int>(), columns = parsed["columns"].as<int>();
  if (k < 1) throw UsageError("--topk must be >= 1");
  if (per_image < 0) throw UsageError("--per-image must be >= 0");
  if (columns < 1) throw UsageError("--columns must be >= 1");
  const std::string sign_text = parsed["sign"].as<std::string>();
  if (sign_text != "positive" && sign_text != "negative") throw UsageError("--sign must be positive or negative");
  const Sign sign = sign_text == "positive" ? Sign::Positive : Sign::Negative;
  const fs::path out_dir = parsed["output"].as<std::string>();
  // Refused before any work, like heatmap's existing files: a rerun must not silently replace the
  // grids of an earlier run (nor leave them mixed with the new ones).
  {
    std::error_code ec;
    if (fs::exists(out_dir, ec)) {
      if (!fs::is_directory(out_dir, ec)) throw UsageError(out_dir.string() + " exists and is not a folder");
      if (!parsed.count("overwrite") && !fs::is_empty(out_dir, ec))
        throw UsageError("output folder " + out_dir.string() +
                         " is not empty; use --overwrite to write into it (files of the same names are replaced)");
    }
  }

  Samples samples(parsed["inputs"].as<std::vector<std::string>>());
  LoadedModel model = open_model(model_flags);
  const auto names = model_class_names(model, model_flags.labels);
  samples.use_model_classes(names);  // also refuses labels beyond the model's classes
  const InputSpec prep = make_input_spec(image_flags, model);
  EvidenceOptions evidence;
  evidence.classes = parse_class_list(parsed["class"].as<std::string>(), names);
  DatasetTopK top(evidence.classes, k, per_image, sign, suppression);

  // The strongest patch logit of each class in each direction, to say why a class has no patch of
  // the sign asked for (only patches of that sign are ranked).
  std::vector<double> highest(evidence.classes.size(), -INFINITY), lowest(evidence.classes.size(), INFINITY);
  SampleLoop loop("patches", samples.size());
  std::vector<int64_t> all(static_cast<size_t>(samples.size()));
  std::iota(all.begin(), all.end(), 0);
  struct ImageMaps {
    torch::Tensor logits;  // [K, H', W']
    MapGeometry geometry;
  };
  const auto pass = [&](const torch::Tensor& batch) {
    const EvidenceMap map = compute_evidence(model.net, batch, evidence);
    std::vector<ImageMaps> out;
    for (int64_t i = 0; i < batch.size(0); ++i) out.push_back(ImageMaps{map.logits[i], map.geometry});
    return out;
  };
  const auto each = [&](DecodedSample& sample, const ImageMaps* maps) {
    loop.run(sample.info.source, [&] {
      if (sample.error) std::rethrow_exception(sample.error);
      const ImageMaps& map = *maps;
      top.add(sample.info.index, map.logits, map.geometry);
      const torch::Tensor flat = map.logits.flatten(1);
      const torch::Tensor hi = std::get<0>(flat.max(1)), lo = std::get<0>(flat.min(1));
      for (size_t c = 0; c < highest.size(); ++c) {
        highest[c] = std::max(highest[c], hi[int64_t(c)].item<double>());
        lowest[c] = std::min(lowest[c], lo[int64_t(c)].item<double>());
      }
    });
  };
  run_in_batches<ImageMaps>(samples, all, prep, batching, model.net->parameters().front().device(),
                            {pass, /*prepare=*/{}, each});
  loop.bar().interrupt();

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  BAGNET_CHECK(!ec, ErrorKind::BadInput, out_dir.string(), ": cannot create the output folder (", ec.message(), ")");
  // Crops come from the original images, re-read now: holding them while streaming would make
  // memory grow with the dataset. Each image is decoded once however many patches it gives.
  std::map<int64_t, ModelInput> loaded;
  nlohmann::json classes = nlohmann::json::array();
  int64_t grids = 0;
  for (size_t slot = 0; slot < top.classes().size(); ++slot) {
    const int64_t cls = top.classes()[slot];
    const auto patches = top.result(slot);
    nlohmann::json list = nlohmann::json::array();
    std::vector<GridTile> tiles;
    for (size_t r = 0; r < patches.size(); ++r) {
      const RankedPatch& p = patches[r];
      if (!loaded.count(p.sample)) loaded.emplace(p.sample, preprocess(samples.image(p.sample), prep));
      const ModelInput& input = loaded.at(p.sample);
      const SampleInfo info = samples.info(p.sample);
      const BoxF box = input.transform.to_original(p.patch.box);
      list.push_back(patch_record(p, r, info, box));
      std::vector<std::string> caption{"#" + std::to_string(r + 1) + "  logit " + fixed(p.patch.value, 3),
                                       short_source(info.source)};
      if (info.label) caption.push_back("true: " + names[*info.label]);
      tiles.push_back(GridTile{crop_box(input.original, box), caption});
    }
    nlohmann::json entry = {{"class", cls}, {"name", names[cls]}, {"patches", list}, {"grid", nullptr}};
    if (tiles.empty() && top.images() > 0) {
      const bool positive = sign == Sign::Positive;
      std::cerr << "warning: class " << cls << " " << names[cls] << ": no patch with " << sign_text
                << " evidence in " << top.images() << " image(s) (" << (positive ? "highest" : "lowest")
                << " patch logit " << fixed(positive ? highest[slot] : lowest[slot], 3) << "), so no grid; try --sign "
                << (positive ? "negative" : "positive") << "\n";
    }
    if (!tiles.empty()) {
      GridOptions grid;
      grid.columns = columns;
      grid.title = "class " + std::to_string(cls) + " " + names[cls] + ": " + std::to_string(tiles.size()) + " most " +
                   (sign == Sign::Positive ? "positive" : "negative") + " patches over " + std::to_string(top.images()) +
                   " images";
      save_image((out_dir / grid_name(cls)).string(), render_patch_grid(tiles, grid));
      entry["grid"] = grid_name(cls);
      ++grids;
    }
    classes.push_back(entry);
    if (loaded.size() > 256) loaded.clear();
  }
  const nlohmann::json doc = {
      {"model", {{"file", json_path(model.path)}, {"sha256", model.checkpoint.sha256}, {"architecture", arch_to_spec(model.arch)},
                 {"receptive_field", receptive_field(model.arch)}, {"stride", total_stride(model.arch)},
                 {"precision", precision_name(model.net->precision())}}},
      {"preprocessing", {{"resize", prep.resize ? nlohmann::json(*prep.resize) : nlohmann::json(nullptr)},
                         {"crop", prep.crop ? nlohmann::json(*prep.crop) : nlohmann::json(nullptr)}}},
      {"images", top.images()},
      {"failed", loop.failed()},
      {"k", k},
      {"per_image", per_image},
      {"sign", sign_text},
      {"max_iou", suppression.max_iou},
      {"min_distance", suppression.min_distance},
      {"classes", classes}};
  write_text_atomically((out_dir / "patches.json").string(), to_json_text(doc, 2) + "\n");
  std::cout << "wrote " << grids << " grids and patches.json to " << out_dir.string() << " (" << top.images()
            << " images, " << top.held() << " patches)\n";
  return loop.finish();
}

}  // namespace bagnet::cli
