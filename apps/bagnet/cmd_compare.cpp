// bagnet compare: the BagNet paper's comparisons of a BagNet with another network on a dataset
// (error distribution, feature sensitivity, interactions, deletion/insertion curves); docs/compare.md.
#include "batch_pipeline.h"
#include "commands.h"
#include "options.h"
#include "sample_loop.h"
#include "samples.h"

#include <bagnet/atomic_file.h>
#include <bagnet/compare.h>
#include <bagnet/error.h>
#include <bagnet/json_text.h>
#include <bagnet/image.h>
#include <bagnet/plot.h>
#include <bagnet/runtime.h>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include <unistd.h>

namespace bagnet::cli {

namespace {

namespace fs = std::filesystem;

struct CompareFlags {
  OtherModelOptions other;
  CompareOptions measure;
  int64_t limit = 0;
  bool explain_predicted = false;
  std::string out_dir;
  bool json = false;
};

std::vector<int64_t> parse_ks(const std::string& text) {
  std::vector<int64_t> ks;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    try {
      size_t used = 0;
      const long long k = std::stoll(part, &used);
      if (used != part.size() || k < 1) throw std::invalid_argument(part);
      ks.push_back(k);
    } catch (const std::exception&) {
      throw UsageError("--patch-counts takes numbers >= 1 separated by commas, got '" + text + "'");
    }
  }
  if (ks.empty()) throw UsageError("--patch-counts takes numbers >= 1 separated by commas, got '" + text + "'");
  return ks;
}

CompareFlags read_compare_flags(const cxxopts::ParseResult& parsed) {
  CompareFlags f;
  if (!parsed.count("model")) throw UsageError("--model OTHER is required (a TorchScript file or a checkpoint)");
  f.other.path = parsed["model"].as<std::string>();
  const std::string input = parsed["model-input"].as<std::string>();
  if (input != "raw" && input != "normalized") throw UsageError("--model-input must be raw or normalized, got '" + input + "'");
  f.other.input = input == "raw" ? OtherInput::Raw : OtherInput::Normalized;
  f.other.size = parsed["model-size"].as<int64_t>();
  f.other.channels = parsed["model-channels"].as<int64_t>();
  if (f.other.size < 0) throw UsageError("--model-size must be >= 0");
  if (f.other.channels != 0 && f.other.channels != 1 && f.other.channels != 3)
    throw UsageError("--model-channels must be 1 or 3");
  f.measure.ks = parse_ks(parsed["patch-counts"].as<std::string>());
  const std::string fill = parsed["fill"].as<std::string>();
  if (fill != "mean" && fill != "blur") throw UsageError("--fill must be mean or blur, got '" + fill + "'");
  f.measure.fill = fill == "mean" ? MaskFill::Mean : MaskFill::Blur;
  f.measure.pairs = parsed["pairs"].as<int64_t>();
  f.measure.steps = parsed["steps"].as<int64_t>();
  f.measure.batch = parsed["batch-size"].as<int64_t>();
  f.measure.seed = parsed["seed"].as<uint64_t>();
  if (f.measure.pairs < 0 || f.measure.steps < 1 || f.measure.batch < 1)
    throw UsageError("--pairs must be >= 0, --steps and --batch-size >= 1");
  f.limit = parsed["limit"].as<int64_t>();
  if (f.limit < 0) throw UsageError("--limit must be >= 0");
  const std::string cls = parsed["class"].as<std::string>();
  if (cls != "true" && cls != "predicted") throw UsageError("--class must be true or predicted, got '" + cls + "'");
  f.explain_predicted = cls == "predicted";
  if (parsed.count("output")) f.out_dir = parsed["output"].as<std::string>();
  f.json = parsed.count("json") > 0;
  return f;
}

nlohmann::json image_line(const ImageComparison& c, const SampleInfo& info) {
  nlohmann::json drops = nlohmann::json::array();
  for (const auto& d : c.sensitivity)
    drops.push_back(d.measured ? nlohmann::json{{"k", d.k}, {"other_informative", d.other_informative},
                                                {"other_random", d.other_random}, {"bagnet_informative", d.bagnet_informative},
                                                {"bagnet_random", d.bagnet_random}, {"bagnet_bag", d.bagnet_bag}}
                               : nlohmann::json{{"k", d.k}, {"measured", false}});
  return {{"index", info.index},
          {"source", json_path(info.source)},
          {"label", info.label ? nlohmann::json(*info.label) : nlohmann::json(nullptr)},
          {"explained_class", c.explained_class},
          {"bagnet_predicted", c.bagnet_predicted},
          {"other_predicted", c.other_predicted},
          {"sensitivity", drops},
          {"deletion_auc", {{"bagnet", curve_area(c.fractions, c.deletion_bagnet)}, {"other", curve_area(c.fractions, c.deletion_other)},
                            {"random_other", curve_area(c.fractions, c.deletion_random_other)}}},
          {"insertion_auc", {{"bagnet", curve_area(c.fractions, c.insertion_bagnet)}, {"other", curve_area(c.fractions, c.insertion_other)},
                             {"random_other", curve_area(c.fractions, c.insertion_random_other)}}}};
}

void print_text(const nlohmann::json& j) {
  const auto num = [](const nlohmann::json& v, int digits) { return v.is_number() ? fixed(v.get<double>(), digits) : std::string("-"); };
  const auto& e = j["error_agreement"];
  std::cout << j["images"] << " images (" << j["labelled"] << " labelled); accuracy BagNet " << num(j["accuracy"]["bagnet"], 4)
            << ", other " << num(j["accuracy"]["other"], 4) << "\n"
            << "errors: both right " << e["both_right"] << ", only BagNet wrong " << e["only_bagnet_wrong"]
            << ", only other wrong " << e["only_other_wrong"] << ", both wrong " << e["both_wrong"] << " (independent errors: "
            << num(e["expected_both_wrong"], 1) << "); kappa " << num(e["kappa"], 3) << "\n";
  const auto& s = j["feature_sensitivity"];
  std::cout << "other model's logit drop when masking k patches (" << s["fill"].get<std::string>() << " fill):\n"
            << "     k  images  informative       random    ratio   BagNet real / bag-level\n";
  for (size_t i = 0; i < s["k"].size(); ++i)
    std::cout << std::setw(6) << s["k"][i].get<int64_t>() << std::setw(8) << s["images"][i].get<int64_t>() << "  "
              << std::setw(11) << num(s["informative_drop"][i], 3) << "  " << std::setw(11) << num(s["random_drop"][i], 3)
              << "  " << std::setw(7) << num(s["ratio"][i], 2) << "   " << num(s["bagnet_informative_drop"][i], 3) << " / "
              << num(s["bagnet_bag_drop"][i], 3) << "\n";
  const auto& in = j["interactions"];
  const auto sci = [](const nlohmann::json& v) {
    if (!v.is_number()) return std::string("-");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v.get<double>());
    return std::string(buf);
  };
  std::cout << "interactions (" << in["pairs"] << " pairs of distant patches): other model's joint - summed drop, mean "
            << sci(in["other"]["mean_deviation"]) << ", quartiles " << sci(in["other"]["deviation_quantiles"]["p25"]) << " / "
            << sci(in["other"]["deviation_quantiles"]["p50"]) << " / " << sci(in["other"]["deviation_quantiles"]["p75"])
            << "; BagNet's largest |deviation| " << sci(in["bagnet"]["max_abs_deviation"]) << "\n";
  for (const char* curve : {"deletion", "insertion"})
    std::cout << curve << " AUC (class probability): BagNet " << num(j[curve]["bagnet_auc"], 3) << ", other "
              << num(j[curve]["other_auc"], 3) << ", other in random order " << num(j[curve]["random_auc"], 3) << "\n";
}

}  // namespace

int run_compare(int argc, char** argv) {
  cxxopts::Options options(
      "bagnet compare",
      "Compare a BagNet with another image classifier on DATASET, as the BagNet paper does: error agreement, the other "
      "model's sensitivity to the BagNet's most informative patches against random ones, interactions between distant "
      "image parts, and deletion/insertion curves in the order of the BagNet's evidence (docs/compare.md). OTHER is a "
      "TorchScript file or any checkpoint bagnet-lens reads. A TorchScript file is a program: it runs when called, so "
      "give only files you trust; it is loaded only from --model, never from --weights.");
  options.positional_help("DATASET");
  add_model_flags(options);
  add_image_flags(options);
  options.add_options("Other model")
      ("model", "the other model: TorchScript ([N, C, H, W] float32 -> [N, classes] logits) or a checkpoint", cxxopts::value<std::string>())
      ("model-input", "what the other model takes: raw (pixels in [0, 1]) or normalized (the BagNet's own input)",
       cxxopts::value<std::string>()->default_value("raw"))
      ("model-size", "input side the other model expects (0: the BagNet's input size; else resized bilinearly)",
       cxxopts::value<int64_t>()->default_value("0"))
      ("model-channels", "1 (grey: channel mean) or 3 (RGB) for the other model (0: as the BagNet)",
       cxxopts::value<int64_t>()->default_value("0"));
  options.add_options("Measurements")
      ("limit", "a random subset of N samples (seeded; 0: all)", cxxopts::value<int64_t>()->default_value("0"))
      ("seed", "seed of the subset, the random patches and the random orders", cxxopts::value<uint64_t>()->default_value("0"))
      ("patch-counts", "numbers of patches k masked for the sensitivity curve", cxxopts::value<std::string>()->default_value("1,2,4,8,16"))
      ("fill", "masked pixels become the image's mean colour (mean) or its blur (blur)", cxxopts::value<std::string>()->default_value("mean"))
      ("class", "the class whose evidence orders the patches: true (the label; unlabelled: predicted) or predicted",
       cxxopts::value<std::string>()->default_value("true"))
      ("pairs", "interaction pairs of distant informative patches per image", cxxopts::value<int64_t>()->default_value("4"))
      ("steps", "points of the deletion and insertion curves", cxxopts::value<int64_t>()->default_value("16"))
      ("batch-size", "masked images per forward pass", cxxopts::value<int64_t>()->default_value("16"));
  options.add_options("Output")
      ("o,output", "folder for compare.json, images.jsonl (one line per image) and the PNG plots", cxxopts::value<std::string>())
      ("json", "print compare.json on stdout instead of the text summary")
      ("dataset", "images or a dataset", cxxopts::value<std::vector<std::string>>());
  add_help_flag(options);
  options.parse_positional({"dataset"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv,
                     "  bagnet compare t10k-images-idx3-ubyte.gz --model fmnist-cnn.pt --limit 1000 -o out/compare\n"
                     "  bagnet compare val/ --weights bagnet32-2ddd53ed.pth.tar --model resnet50.ts --model-input normalized\n"
                     "  bagnet compare val.csv --weights bagnet9.pt --model resnet.pt --fill blur --json > compare.json\n",
                     parsed))
    return kExitOk;
  if (!parsed.count("dataset")) throw UsageError("no DATASET given");
  const ModelFlags model_flags = read_model_flags(parsed);
  const ImageFlags image_flags = read_image_flags(parsed);
  CompareFlags flags = read_compare_flags(parsed);

  Samples samples(parsed["dataset"].as<std::vector<std::string>>());
  LoadedModel model = open_model(model_flags);
  const auto names = model_class_names(model, model_flags.labels);
  samples.use_model_classes(names);
  const InputSpec prep = make_input_spec(image_flags, model);
  flags.other.device = resolve_device(model_flags.device);
  std::unique_ptr<OtherModel> other = open_other_model(flags.other, prep, model.arch.num_classes);

  std::ofstream lines;
  std::string lines_tmp;
  if (!flags.out_dir.empty()) {
    fs::create_directories(flags.out_dir);
    lines_tmp = (fs::path(flags.out_dir) / ("images.jsonl.tmp-" + std::to_string(::getpid()))).string();
    lines.open(lines_tmp, std::ios::binary | std::ios::trunc);
    BAGNET_CHECK(lines.good(), ErrorKind::BadInput, lines_tmp, ": cannot write");
  }
  const std::vector<int64_t> chosen = random_subset(samples.size(), flags.limit, flags.measure.seed);
  // One probe before the loop: a model that throws, or answers in another shape, fails once, not per sample.
  for (const int64_t index : chosen) {
    torch::Tensor probe;
    try {
      probe = preprocess(samples.image(index), prep).tensor;
    } catch (const Error&) {
      continue;  // an unreadable sample is the loop's to report
    }
    other->logits(probe.unsqueeze(0).to(flags.other.device));
    break;
  }
  std::cerr << "other model: " << other->description() << "\n";
  CompareSummary summary(flags.measure);
  SampleLoop loop("compare", static_cast<int64_t>(chosen.size()));
  // Each image's masked copies already go through both networks in batches (--batch-size); the
  // next images are decoded meanwhile.
  SamplePrefetcher prefetcher(samples, chosen, [&prep](const cv::Mat& image) { return preprocess(image, prep); },
                              /*threads=*/1, /*ahead=*/4);
  while (std::optional<DecodedSample> sample = prefetcher.next()) {
    const SampleInfo& info = sample->info;
    const int64_t index = info.index;
    loop.run(info.source, [&] {
      if (sample->error) std::rethrow_exception(sample->error);
      const ModelInput& input = *sample->input;
      const std::optional<int64_t> label = flags.explain_predicted ? std::nullopt : info.label;
      ImageComparison c = compare_image(model.net, *other, input.tensor.unsqueeze(0).to(flags.other.device), label, flags.measure,
                                        flags.measure.seed * 1000003ULL + static_cast<uint64_t>(index));
      if (flags.explain_predicted) c.label = info.label;  // correctness still against the truth
      c.index = index;
      summary.add(c);
      if (lines.is_open()) lines << to_json_text(image_line(c, info)) << '\n';
    });
  }
  loop.bar().interrupt();

  nlohmann::json j = {{"schema", "bagnet-lens/compare"}, {"version", 1}};
  j.update(summary.to_json());
  j["bagnet"] = {{"weights", json_path(model.path)}, {"sha256", model.checkpoint.sha256}, {"architecture", arch_to_spec(model.arch)}};
  j["other"] = {{"model", json_path(flags.other.path)}, {"kind", other->kind()}, {"description", other->description()}};
  j["settings"] = {{"limit", flags.limit}, {"seed", flags.measure.seed}, {"class", flags.explain_predicted ? "predicted" : "true"},
                   {"pairs", flags.measure.pairs}, {"steps", flags.measure.steps}, {"samples_total", samples.size()}};
  if (!flags.out_dir.empty()) {
    lines.close();
    BAGNET_CHECK(lines.good(), ErrorKind::Runtime, lines_tmp, ": write failed (disk full?)");
    fs::rename(lines_tmp, fs::path(flags.out_dir) / "images.jsonl");
    write_text_atomically((fs::path(flags.out_dir) / "compare.json").string(), to_json_text(j, 2) + "\n");
    for (const auto& [name, picture] : compare_plots(j)) save_image((fs::path(flags.out_dir) / name).string(), picture);
    std::cerr << "wrote compare.json, images.jsonl and plots to " << flags.out_dir << "\n";
  }
  if (flags.json) std::cout << to_json_text(j, 2) << "\n";
  else print_text(j);
  return loop.finish();
}

}  // namespace bagnet::cli
