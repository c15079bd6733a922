// bagnet report: a JSON evidence report per image (what drove the decision, and for a mistake
// which patches pulled it away from the true class), for images or whole datasets, resumable and
// shardable.
#include "batch_pipeline.h"
#include "commands.h"
#include "options.h"
#include "report_maps.h"
#include "report_run.h"
#include "sample_loop.h"
#include "samples.h"
#include "site_output.h"

#include <bagnet/json_text.h>
#include <bagnet/error.h>
#include <bagnet/labels.h>
#include <bagnet/report.h>
#include <bagnet/report_folder.h>
#include <bagnet/site.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>

namespace bagnet::cli {

namespace {

namespace fs = std::filesystem;

ReportContext make_context(const ModelFingerprint& model, const std::vector<std::string>& names,
                           const SampleInfo& sample, const ImageTransform& t) {
  ReportContext c;
  c.model = model;
  c.class_names = names;
  ImageInfo& im = c.image;
  im.index = sample.index;
  im.source = sample.source;
  im.dataset = sample.dataset;
  im.label = sample.label;
  im.transform = t;
  return c;
}

// A sample's report on its way from the network to reports.jsonl: `prepare` builds it from the
// evidence, and makes its text unless maps are to be written first (their files are named in it).
struct BuiltReport {
  PatchEvidence evidence;        // released once the report is built
  std::optional<Report> report;  // only while its maps wait to be written
  std::string text;              // to_json_text: one line of reports.jsonl, or indented for stdout
  ReportSummary::Entry entry;    // what the summary takes from it
};

// OUTDIR of a report run (report_folder.h owns its files and lock): resumes what an earlier run of
// the same run left (run.json, complete lines of reports.jsonl), appends one line per report, and
// ends with the canonical order and the summary.
struct ReportOutput {
  std::optional<ReportFolder> folder;
  std::set<int64_t> done;  // samples reported by an earlier run
  // A run that starts from nothing appends in canonical order, so its summary is built on the way
  // and the file needs no second pass; a resumed run sorts and re-reads it at the end.
  ReportSummary digest;
  int64_t appended = 0;

  void open(const std::string& dir, const std::vector<std::string>& inputs, const Samples& samples,
            const nlohmann::json& probe, int64_t shard, int64_t shards, bool with_maps) {
    check_output_apart(dir, inputs);
    folder = ReportFolder::open_to_write(dir);  // one writer at a time
    const std::string jsonl = folder->path(report_files::kReports);
    const nlohmann::json identity = run_identity(samples, probe, shard, shards);
    if (const auto earlier = folder->read_run()) check_same_run(*earlier, identity, dir, true);
    // One report at a time: resuming a large run must not hold its reports in memory.
    bool first = true;
    folder->scan_reports(true, [&](const nlohmann::json& r) {
      const int64_t index = r.at("image").at("index").get<int64_t>();
      BAGNET_CHECK(index < samples.size() && r.at("image").at("source") == json_path(samples.info(index).source),
                   ErrorKind::InvalidArgument, jsonl, " holds a report of sample ", index, " (",
                   to_json_text(r.at("image").at("source")), ") that is not among these inputs; use another -o folder");
      if (first) check_same_report_kind(r, probe, jsonl, "; use another -o folder");  // folders without run.json
      first = false;
      done.insert(index);
    });
    folder->write_run(identity);
    if (with_maps) folder->make_sample_folders();
  }

  // `line`: a report's to_json_text(); `entry`: what the summary takes from it. A failed write
  // throws Error(Output), which ends the run.
  void append(const std::string& line, const ReportSummary::Entry& entry) {
    folder->append_report(line);
    if (done.empty()) digest.add(entry);
    ++appended;
  }

  void finish(int64_t inputs, int64_t shard, int64_t shards, int64_t samples_total, const std::vector<std::string>& names) {
    // Canonical order (a resumed run may have appended out of order) and the summary, one report at
    // a time: memory stays flat however large the run.
    int64_t written = appended;
    if (!done.empty()) {
      digest = ReportSummary{};
      written = 0;
      folder->sort_reports([&](const nlohmann::json& r) {
        digest.add(r);
        ++written;
      });
    }
    nlohmann::json summary = digest.finish(inputs);
    if (shards > 1) summary["shard"] = {{"index", shard}, {"count", shards}, {"samples_total", samples_total}};
    summary["class_names"] = names;  // every class's name, for pages that list classes no report mentions
    folder->write_summary(summary);
    std::cerr << "wrote " << written << " reports of " << inputs << " samples to " << folder->path(report_files::kReports)
              << (done.empty() ? "" : " (" + std::to_string(done.size()) + " from an earlier run)") << "\n";
    if (summary["accuracy"].is_number())
      std::cerr << "accuracy " << fixed(summary["accuracy"].get<double>(), 4) << " on " << summary["labelled"]
                << " labelled samples\n";
  }
};

}  // namespace

int run_report(int argc, char** argv) {
  cxxopts::Options options(
      "bagnet report",
      "Write a JSON evidence report per image: model fingerprint, predictions, for each explained class the "
      "total evidence (mean of the patch logits, checked against the logit) and the strongest positive and "
      "negative patches; with a true label (datasets) the decision, and for mistakes the margin, the patches "
      "carrying it and the smallest set of patches whose removal from the bag flips the decision (exact at the "
      "bag level). Inputs are images or datasets (a directory of class folders, a path,label CSV, an "
      "*-images-idx3-ubyte[.gz] file). With -o: OUTDIR/reports.jsonl (one report per line, in input order) and "
      "OUTDIR/summary.json; a rerun resumes where a killed run stopped. Schema: docs/report-schema.json. "
      "--html also writes OUTDIR/index.html, the evidence browser (docs/evidence-browser.md).");
  options.positional_help("IMAGE|DATASET...");
  add_model_flags(options);
  add_precision_flag(options);
  add_image_flags(options);
  add_ranking_flags(options);
  add_site_flags(options);
  add_batch_flags(options);
  options.add_options("Report")
      ("o,output", "output folder (without: print each report as JSON on stdout)", cxxopts::value<std::string>())
      ("k,topk", "predictions listed and classes explained", cxxopts::value<int>()->default_value("5"))
      ("patches", "top positive and negative patches per explained class", cxxopts::value<int>()->default_value("5"))
      ("margin-patches", "mistakes: patches carrying most of the margin", cxxopts::value<int>()->default_value("5"))
      ("verify-occlusion", "mask the top K patches with the image's mean colour, run the model again and report "
                           "the real logit drop beside the bag-level one (0: off)",
       cxxopts::value<int>()->default_value("0"))
      ("maps", "with -o: also write each sample's maps of the explained classes (float32, OUTDIR/maps/NNNNNN.npz) "
                "and its image (OUTDIR/images/)")
      ("stride", "maps: native (the network's own map, as in the report's boxes) or N, a dense map every N pixels "
                 "(bagnet info lists the strides)", cxxopts::value<std::string>()->default_value("native"))
      ("html", "with -o: also build the evidence browser OUTDIR/index.html (implies --maps; rebuilt on resume)")
      ("shard", "process only samples with index % N == I (I/N), e.g. for a Slurm job array; combine with "
                "bagnet merge", cxxopts::value<std::string>()->default_value(""))
      ("inputs", "images or datasets", cxxopts::value<std::vector<std::string>>());
  add_help_flag(options);
  options.parse_positional({"inputs"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv,
                     "  bagnet report cat.jpg --weights bagnet32-2ddd53ed.pth.tar\n"
                     "  bagnet report t10k-images-idx3-ubyte.gz --weights model.pt -o out/report\n"
                     "  bagnet report val/ --weights model.pt -o out/shard3 --shard 3/8   # then: bagnet merge out/shard*"
                     " -o out/report\n"
                     "  bagnet report photos.csv --weights model.pt -o out/r --verify-occlusion 5\n"
                     "  bagnet report t10k-images-idx3-ubyte.gz -o out/browse --html   # open out/browse/index.html\n",
                     parsed))
    return kExitOk;
  if (!parsed.count("inputs")) throw UsageError("no input images or datasets given");
  ModelFlags model_flags = read_model_flags(parsed);
  model_flags.precision = read_precision_flag(parsed);
  const ImageFlags image_flags = read_image_flags(parsed);
  ReportOptions settings;
  settings.topk = parsed["topk"].as<int>();
  settings.patches = parsed["patches"].as<int>();
  settings.margin_patches = parsed["margin-patches"].as<int>();
  settings.verify_occlusion = parsed["verify-occlusion"].as<int>();
  settings.suppression = read_ranking_flags(parsed);
  if (settings.topk < 1) throw UsageError("--topk must be >= 1");
  if (settings.patches < 0 || settings.margin_patches < 0 || settings.verify_occlusion < 0)
    throw UsageError("--patches, --margin-patches and --verify-occlusion must be >= 0");
  const auto [shard, shards] = parse_shard(parsed["shard"].as<std::string>());
  const bool to_folder = parsed.count("output") > 0;
  if (shards > 1 && !to_folder) throw UsageError("--shard needs -o OUTDIR");
  const bool html = parsed.count("html") > 0;
  MapRequest maps;
  maps.enabled = html || parsed.count("maps") > 0;
  if (maps.enabled && !to_folder) throw UsageError(html ? "--html needs -o OUTDIR" : "--maps needs -o OUTDIR");
  if (!maps.enabled && parsed.count("stride")) throw UsageError("--stride sets the stride of the raw maps: add --maps or --html");
  const SiteOptions site = read_site_flags(parsed);
  const BatchFlags batching = read_batch_flags(parsed);

  Samples samples(parsed["inputs"].as<std::vector<std::string>>());
  LoadedModel model = open_model(model_flags);
  const auto names = model_class_names(model, model_flags.labels);
  samples.use_model_classes(names);  // also refuses labels beyond the model's classes
  const InputSpec prep = make_input_spec(image_flags, model);
  const ModelFingerprint fp = fingerprint(model, prep);
  settings.topk = std::min<int64_t>(settings.topk, model.arch.num_classes);
  if (maps.enabled) {
    maps.stride = resolve_map_stride(model.arch, parsed["stride"].as<std::string>());
    maps.dense = maps.stride != map_strides(model.arch).back();
  }

  std::vector<int64_t> mine;
  for (int64_t i = shard; i < samples.size(); i += shards) mine.push_back(i);

  ReportOutput folder;
  if (to_folder) {
    Report probe;  // only its model, settings and kind of maps are used
    probe.model = fp;
    probe.settings = settings;
    if (maps.enabled) probe.maps = planned_maps(maps, model.arch);
    folder.open(parsed["output"].as<std::string>(), parsed["inputs"].as<std::vector<std::string>>(), samples,
                report_to_json(probe), shard, shards, maps.enabled);
  }
  const std::set<int64_t>& done = folder.done;

  std::vector<int64_t> todo;
  for (const int64_t index : mine)
    if (!done.count(index)) todo.push_back(index);
  SampleLoop loop("report", static_cast<int64_t>(todo.size()));
  // Reports are built and turned into text by `prepare`, for small inputs on the pass lanes
  // several at a time (their JSON is released there too); here they are only written, in order.
  const auto seal = [&](BuiltReport& built, const Report& report) {
    const nlohmann::json json = report_to_json(report);
    built.text = to_json_text(json, to_folder ? -1 : 2);
    if (to_folder) built.entry = ReportSummary::entry_of(json);  // the summary is the folder's
  };
  const auto pass = [&](const torch::Tensor& batch) {
    std::vector<BuiltReport> built;
    for (PatchEvidence& evidence : patch_evidence(model.net, batch)) built.push_back(BuiltReport{std::move(evidence), {}, {}, {}});
    return built;
  };
  const auto prepare = [&](const DecodedSample& sample, BuiltReport& built) {
    Report report = build_report(model.net, sample.input->tensor, built.evidence,
                                 make_context(fp, names, sample.info, sample.input->transform), settings);
    built.evidence = PatchEvidence{};
    if (maps.enabled)
      built.report = std::move(report);
    else
      seal(built, report);
  };
  const auto each = [&](DecodedSample& sample, BuiltReport* built) {
    loop.run(sample.info.source, [&] {
      if (sample.error) std::rethrow_exception(sample.error);
      if (built->report) {
        built->report->maps = write_sample_maps(*folder.folder, *built->report, model.net, *sample.input, maps);
        seal(*built, *built->report);
        built->report.reset();
      }
      if (to_folder) {
        folder.append(built->text, built->entry);
      } else {
        std::cout << built->text << "\n" << std::flush;
      }
    });
  };
  run_in_batches<BuiltReport>(samples, todo, prep, batching, model.net->parameters().front().device(),
                              {pass, prepare, each});
  loop.bar().interrupt();

  if (to_folder) folder.finish(static_cast<int64_t>(mine.size()), shard, shards, samples.size(), names);
  if (html) build_site_with_progress(*folder.folder, site);
  return loop.finish();
}

}  // namespace bagnet::cli
