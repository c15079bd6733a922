// bagnet diff: two BagNets on the same images; which decisions changed and where the evidence
// moved (docs/diff.md).
#include "commands.h"
#include "options.h"
#include "sample_loop.h"
#include "samples.h"

#include <bagnet/atomic_file.h>
#include <bagnet/diff.h>
#include <bagnet/diff_view.h>
#include <bagnet/error.h>
#include <bagnet/image.h>
#include <bagnet/json_text.h>
#include <bagnet/runtime.h>
#include <bagnet/site.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <random>

#include <unistd.h>

namespace bagnet::cli {

namespace {

namespace fs = std::filesystem;

struct DiffFlags {
  ModelFlags against;
  std::string map_stride = "auto";
  DiffOptions measure;
  int64_t limit = 0;
  uint64_t seed = 0;
  int64_t figures = 200;
  std::string out_dir;
  bool json = false, html = false;
};

DiffFlags read_diff_flags(const cxxopts::ParseResult& parsed, const ModelFlags& weights) {
  DiffFlags f;
  if (!parsed.count("against")) throw UsageError("--against MODEL is required (the BagNet to compare with)");
  f.against = weights;  // device, threads and labels are shared
  f.against.weights = parsed["against"].as<std::string>();
  f.against.arch = parsed["against-arch"].as<std::string>();
  f.map_stride = parsed["map-stride"].as<std::string>();
  f.measure.cells = parsed["cells"].as<int64_t>();
  if (f.measure.cells < 0) throw UsageError("--cells must be >= 0");
  f.limit = parsed["limit"].as<int64_t>();
  if (f.limit < 0) throw UsageError("--limit must be >= 0");
  f.seed = parsed["seed"].as<uint64_t>();
  f.figures = parsed["figures"].as<int64_t>();
  if (f.figures < 0) throw UsageError("--figures must be >= 0");
  if (parsed.count("output")) f.out_dir = parsed["output"].as<std::string>();
  f.json = parsed.count("json") > 0;
  f.html = parsed.count("html") > 0;
  if (f.html && f.out_dir.empty()) throw UsageError("--html needs -o OUTDIR");
  return f;
}

// The two models must name their classes alike, unless --labels names them for both.
void check_same_classes(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  BAGNET_CHECK(a.size() == b.size(), ErrorKind::BadInput, "the models have ", a.size(), " and ", b.size(), " classes");
  for (size_t c = 0; c < a.size(); ++c)
    BAGNET_CHECK(a[c] == b[c], ErrorKind::BadInput, "the models name class ", c, " differently: '", a[c], "' and '", b[c],
                 "' (give --labels to use one list for both)");
}

nlohmann::json model_json(const LoadedModel& m) {
  return {{"file", json_path(m.path)}, {"sha256", m.checkpoint.sha256}, {"architecture", arch_to_spec(m.arch)},
          {"receptive_field", receptive_field(m.arch)}};
}

nlohmann::json cells_json(const std::vector<ShiftCell>& cells, const ImageTransform& t) {
  nlohmann::json out = nlohmann::json::array();
  for (const ShiftCell& c : cells) {
    const BoxF o = t.to_original(c.box);
    out.push_back({{"cell", {c.row, c.col}}, {"difference", c.value},
                   {"box_input", {c.box.top, c.box.left, c.box.bottom(), c.box.right()}},
                   {"box_original", {o.top, o.left, o.bottom, o.right}}});
  }
  return out;
}

nlohmann::json change_line(const ImageDiff& d, const SampleInfo& info, const ImageTransform& t,
                           const std::vector<std::string>& names, const std::string& figure) {
  const EvidenceShift& s = *d.shift;
  return {{"index", info.index},
          {"source", json_path(info.source)},
          {"label", d.label ? nlohmann::json(*d.label) : nlohmann::json(nullptr)},
          {"label_name", d.label ? nlohmann::json(names.at(*d.label)) : nlohmann::json(nullptr)},
          {"change", change_name(d.change)},
          {"against", {{"predicted", d.predicted_b}, {"name", names.at(d.predicted_b)}, {"probability", d.probability_b},
                       {"margin", d.margin_b}}},
          {"weights", {{"predicted", d.predicted_a}, {"name", names.at(d.predicted_a)}, {"probability", d.probability_a},
                       {"margin", d.margin_a}}},
          {"evidence", {{"map_rows", s.difference.size(0)}, {"map_cols", s.difference.size(1)}, {"stride", s.stride},
                        {"positive_sum", s.positive_sum}, {"negative_sum", s.negative_sum},
                        {"toward_weights", cells_json(s.toward_a, t)}, {"toward_against", cells_json(s.toward_b, t)}}},
          {"figure", figure.empty() ? nlohmann::json(nullptr) : nlohmann::json(figure)}};
}

void print_text(const nlohmann::json& j) {
  const auto num = [](const nlohmann::json& v, int digits) { return v.is_number() ? fixed(v.get<double>(), digits) : std::string("-"); };
  const auto& d = j["decisions"];
  std::cout << j["images"] << " images (" << j["labelled"] << " labelled); accuracy --weights " << num(j["accuracy"]["weights"], 4)
            << ", --against " << num(j["accuracy"]["against"], 4) << " (change " << num(j["accuracy"]["change"], 4) << ")\n"
            << "decisions: same " << d["same"] << ", fixed " << d["fixed"] << ", introduced " << d["introduced"]
            << ", other mistake " << d["other_mistake"] << ", changed (unlabelled) " << d["changed_unlabelled"] << "\n";
  char p[32];
  std::snprintf(p, sizeof p, "%.3g", j["mcnemar"]["p_value"].get<double>());
  std::cout << "McNemar exact test on fixed vs introduced: p = " << p << "\n";
  if (!j["per_class"].empty()) {
    std::cout << "class                   samples  --against  --weights   change  fixed  introduced\n";
    for (const auto& c : j["per_class"])
      std::cout << std::left << std::setw(22) << c["name"].get<std::string>().substr(0, 22) << std::right << std::setw(9)
                << c["samples"].get<int64_t>() << std::setw(11) << num(c["against_accuracy"], 4) << std::setw(11) << num(c["weights_accuracy"], 4)
                << std::setw(9) << num(c["change"], 4) << std::setw(7) << c["fixed"].get<int64_t>() << std::setw(12) << c["introduced"].get<int64_t>() << "\n";
  }
}

}  // namespace

int run_diff(int argc, char** argv) {
  cxxopts::Options options(
      "bagnet diff",
      "Run two BagNets on DATASET and show what changed: accuracy and per-class change, the mistakes fixed and introduced "
      "going from the --against model (before) to the --weights model (after), and for every changed decision where the "
      "evidence moved: both models' margin maps of the new class over the old one on a common dense grid, their "
      "difference, and its strongest cells (docs/diff.md). Both models see the same pixels (--resize/--crop: the "
      "--weights model's), each normalised its own way.");
  options.positional_help("DATASET");
  add_model_flags(options);
  add_image_flags(options);
  options.add_options("Diff")
      ("against", "the BagNet to compare with (before): checkpoint or model file", cxxopts::value<std::string>())
      ("against-arch", "its architecture (default: detected)", cxxopts::value<std::string>()->default_value(""))
      ("map-stride", "stride of the dense maps compared: auto (the largest dense stride both models give) or a number",
       cxxopts::value<std::string>()->default_value("auto"))
      ("cells", "strongest cells of the difference listed per direction", cxxopts::value<int64_t>()->default_value("3"))
      ("limit", "a random subset of N samples (seeded; 0: all)", cxxopts::value<int64_t>()->default_value("0"))
      ("seed", "seed of the subset", cxxopts::value<uint64_t>()->default_value("0"));
  options.add_options("Output")
      ("o,output", "folder for diff.json, changes.jsonl (one line per changed decision) and figures/", cxxopts::value<std::string>())
      ("figures", "with -o: pictures of the first N changed decisions (figures/NNNNNN.png)",
       cxxopts::value<int64_t>()->default_value("200"))
      ("html", "with -o: also write OUTDIR/index.html, a page of the changes in the evidence browser's style")
      ("json", "print diff.json on stdout instead of the text summary")
      ("dataset", "images or a dataset", cxxopts::value<std::vector<std::string>>());
  add_help_flag(options);
  options.parse_positional({"dataset"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv,
                     "  bagnet diff t10k-images-idx3-ubyte.gz --weights q17.pt --against q9.pt -o out/diff --html\n"
                     "  bagnet diff val/ --weights bagnet33.pth.tar --against bagnet17.pth.tar --limit 1000 --json\n",
                     parsed))
    return kExitOk;
  if (!parsed.count("dataset")) throw UsageError("no DATASET given");
  const ModelFlags model_flags = read_model_flags(parsed);
  const ImageFlags image_flags = read_image_flags(parsed);
  const DiffFlags flags = read_diff_flags(parsed, model_flags);

  Samples samples(parsed["dataset"].as<std::vector<std::string>>());
  LoadedModel a = open_model(model_flags);
  LoadedModel b = open_model(flags.against);
  const auto names = model_class_names(a, model_flags.labels);
  check_same_classes(names, model_class_names(b, model_flags.labels));
  samples.use_model_classes(names);
  const InputSpec prep_a = make_input_spec(image_flags, a);
  InputSpec prep_b = make_input_spec(image_flags, b);
  prep_b.resize = prep_a.resize;  // the same pixels, each model's own normalisation
  prep_b.crop = prep_a.crop;
  DiffOptions measure = flags.measure;
  measure.stride = flags.map_stride == "auto" ? common_dense_stride(a.arch, b.arch) : resolve_map_stride(a.arch, flags.map_stride);
  if (!gives_dense_map(a.arch, measure.stride) || !gives_dense_map(b.arch, measure.stride))
    throw UsageError("--map-stride " + flags.map_stride + " is not a dense map stride of both models (the largest they share is " +
                     std::to_string(common_dense_stride(a.arch, b.arch)) + ")");

  fs::path out(flags.out_dir);
  std::ofstream lines;
  std::string lines_tmp;
  if (!flags.out_dir.empty()) {
    fs::create_directories(out / "figures");
    lines_tmp = (out / ("changes.jsonl.tmp-" + std::to_string(::getpid()))).string();
    lines.open(lines_tmp, std::ios::binary | std::ios::trunc);
    BAGNET_CHECK(lines.good(), ErrorKind::BadInput, lines_tmp, ": cannot write");
  }
  const torch::Device device = resolve_device(model_flags.device);
  DiffSummary summary(a.arch.num_classes);
  int64_t figures = 0;
  const std::vector<int64_t> chosen = random_subset(samples.size(), flags.limit, flags.seed);
  SampleLoop loop("diff", static_cast<int64_t>(chosen.size()));
  for (const int64_t index : chosen) {
    const SampleInfo info = samples.info(index);
    loop.run(info.source, [&] {
      const cv::Mat image = samples.image(index);
      const ModelInput in_a = preprocess(image, prep_a), in_b = preprocess(image, prep_b);
      ImageDiff d = diff_image(a.net, b.net, in_a.tensor.unsqueeze(0).to(device), in_b.tensor.unsqueeze(0).to(device), info.label,
                               measure);
      d.index = index;
      summary.add(d);
      if (!d.changed() || !lines.is_open()) return;
      std::string figure;
      if (figures < flags.figures) {
        figure = "figures/" + sample_stem(index) + ".png";
        save_image((out / figure).string(), render_diff_figure(in_a.original, in_a.transform, *d.shift, names).bgr());
        ++figures;
      }
      lines << to_json_text(change_line(d, info, in_a.transform, names, figure)) << '\n';
    });
  }
  loop.bar().interrupt();

  nlohmann::json j = {{"schema", "bagnet-lens/diff"}, {"version", 1}};
  j.update(summary.to_json(names));
  j["weights"] = model_json(a);
  j["against"] = model_json(b);
  j["settings"] = {{"map_stride", measure.stride}, {"cells", measure.cells}, {"limit", flags.limit}, {"seed", flags.seed},
                   {"samples_total", samples.size()}, {"failed", loop.failed()}};
  if (!flags.out_dir.empty()) {
    lines.close();
    BAGNET_CHECK(lines.good(), ErrorKind::Runtime, lines_tmp, ": write failed (disk full?)");
    fs::rename(lines_tmp, out / "changes.jsonl");
    write_text_atomically((out / "diff.json").string(), to_json_text(j, 2) + "\n");
    if (flags.html) write_diff_page(flags.out_dir, j);
    std::cerr << "wrote diff.json, changes.jsonl" << (figures ? ", figures/" : "") << (flags.html ? " and index.html" : "")
              << " to " << flags.out_dir << "\n";
  }
  if (flags.json) std::cout << to_json_text(j, 2) << "\n";
  else print_text(j);
  return loop.finish();
}

}  // namespace bagnet::cli
