// bagnet merge: combine the output folders of `bagnet report --shard I/N` runs into the
// reports.jsonl and summary.json an unsharded run writes (same order, same bytes).
#include "commands.h"
#include "options.h"
#include "report_run.h"
#include "site_output.h"

#include <bagnet/json_text.h>
#include <bagnet/error.h>
#include <bagnet/report.h>
#include <bagnet/report_folder.h>
#include <bagnet/site.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>



namespace bagnet::cli {

namespace {

namespace fs = std::filesystem;

// More shards than any run splits into; a count beyond it is a damaged or hostile summary.json.
constexpr int64_t kMaxShards = 1000000;

std::string join(const std::vector<int64_t>& values) {
  std::string text;
  for (size_t i = 0; i < values.size() && i < 20; ++i) text += (i ? ", " : "") + std::to_string(values[i]);
  if (values.size() > 20) text += ", ... (" + std::to_string(values.size()) + " in all)";
  return text;
}

// What the shard folders hold, from their run.json and summary.json alone; refuses folders of
// different runs, and a set of folders that does not cover every sample of the run.
struct MergePlan {
  std::vector<ReportFolder> folders;
  std::vector<int64_t> reported;  // per folder, as its summary says
  int64_t inputs = 0;             // samples the folders were given (reported or failed)
  std::optional<nlohmann::json> run;
  nlohmann::json class_names;
};

MergePlan plan_merge(const std::vector<std::string>& dirs) {
  MergePlan plan;
  int64_t count = 0, total = -1;
  std::set<int64_t> seen;
  for (const auto& dir : dirs) {
    ReportFolder folder = ReportFolder::open(dir);
    // Shards of one run only: the same samples, model, preprocessing, settings and shard count.
    if (const auto run = folder.read_run()) {
      if (plan.run) check_same_run(*run, *plan.run, dir, false);
      else plan.run = run;
    }
    const nlohmann::json summary = folder.read_summary();
    if (plan.class_names.is_null() && summary.contains("class_names")) plan.class_names = summary["class_names"];
    // Numbers of a folder that may come from anywhere: checked before use (json_integer).
    const std::string where = folder.path(report_files::kSummary);
    plan.folders.push_back(std::move(folder));
    plan.reported.push_back(summary.contains("reported") ? json_integer(summary["reported"], where + ": reported") : -1);
    plan.inputs += json_integer(summary.at("inputs"), where + ": inputs");
    if (!summary.contains("shard")) {
      BAGNET_CHECK(count == 0, ErrorKind::InvalidArgument, dir, ": not a shard, the others are shards of ", count);
      continue;
    }
    const auto& s = summary["shard"];
    const int64_t shards = json_integer(s.at("count"), where + ": shard.count");
    const int64_t index = json_integer(s.at("index"), where + ": shard.index");
    BAGNET_CHECK(shards >= 1 && shards <= kMaxShards && index >= 0 && index < shards, ErrorKind::BadInput, where,
                 ": shard ", index, " of ", shards, " is not a shard (0 <= index < count <= ", kMaxShards, ")");
    BAGNET_CHECK(count == 0 || count == shards, ErrorKind::InvalidArgument, dir, ": shard of ", shards,
                 ", the others are shards of ", count);
    count = shards;
    total = json_integer(s.at("samples_total"), where + ": shard.samples_total");
    BAGNET_CHECK(seen.insert(index).second, ErrorKind::InvalidArgument, dir, ": shard ", index, " given twice");
  }
  std::vector<int64_t> missing;
  for (int64_t i = 0; i < count; ++i)
    if (!seen.count(i)) missing.push_back(i);
  // Nothing is written for an incomplete set: a partial summary would read like a result.
  BAGNET_CHECK(missing.empty() && (total < 0 || plan.inputs == total), ErrorKind::BadInput,
               "incomplete merge: shard", missing.size() == 1 ? " " : "s ", join(missing), " of ", count,
               " missing (", total - plan.inputs, " of ", total,
               " samples); nothing written. Give every shard's folder (a task still running, or one that failed, "
               "must finish first)");
  return plan;
}

// OUTDIR's report files are replaced, so only a new or empty folder or an earlier report output
// may be given (other files of such a folder are left as they are).
void check_replaceable(const std::string& out_dir) {
  std::error_code ec;
  if (!fs::exists(out_dir, ec)) return;
  BAGNET_CHECK(fs::is_directory(out_dir, ec), ErrorKind::InvalidArgument, out_dir, ": exists and is not a folder");
  const ReportFolder out = ReportFolder::open(out_dir);
  bool only_lock = true;
  for (auto it = fs::directory_iterator(out_dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    only_lock = only_lock && it->path().filename() == report_files::kLock;
  BAGNET_CHECK(only_lock || out.has(report_files::kSummary) || out.has(report_files::kReports), ErrorKind::InvalidArgument,
               out_dir, ": exists and is not a report folder; give a new or empty one");
}

// Writes the merged folder into a staging folder inside OUTDIR and puts it in place only when it
// is complete (ReportFolder::replace_with).
int64_t write_merge(const MergePlan& plan, ReportFolder& out, const SiteOptions* site) {
  ReportFolder staging = out.open_staging(".merging");
  // Every shard's lines, one report at a time (memory stays flat), then sorted in place.
  nlohmann::json first_report;
  for (size_t i = 0; i < plan.folders.size(); ++i) {
    const ReportFolder& shard = plan.folders[i];
    int64_t lines = 0;
    shard.visit_reports([&](const nlohmann::json& r) {
      if (first_report.is_null()) first_report = r;
      check_same_report_kind(r, first_report, shard.dir(), " than the first folder's; merge only the shards of one run");
      if (r.contains("maps") && r.at("maps").is_object()) staging.adopt_sample_files(shard, r);  // before the line naming them
      staging.append_report(to_json_text(r));
      ++lines;
    });
    BAGNET_CHECK(lines == plan.reported[i], ErrorKind::BadInput, shard.dir(), ": reports.jsonl holds ", lines,
                 " reports, its summary.json says ", plan.reported[i], " (a run still going, or a later run not finished?)");
  }
  ReportSummary digest;
  int64_t written = 0;
  staging.sort_reports([&](const nlohmann::json& r) {  // refuses a sample reported twice
    digest.add(r);
    ++written;
  });
  nlohmann::json summary = digest.finish(plan.inputs);
  if (!plan.class_names.is_null()) summary["class_names"] = plan.class_names;
  staging.write_summary(summary);
  if (plan.run) {  // what an unsharded run of the same inputs writes, so it can be resumed alike
    nlohmann::json whole = *plan.run;
    whole["shard"] = {{"index", 0}, {"count", 1}};
    staging.write_run(whole);
  }
  if (site) build_site_with_progress(staging, *site);
  out.replace_with(std::move(staging));
  return written;
}

}  // namespace

int run_merge(int argc, char** argv) {
  cxxopts::Options options("bagnet merge",
                           "Combine the output folders of sharded `bagnet report --shard I/N` runs into one "
                           "reports.jsonl (in input order) and summary.json, identical to an unsharded run's. "
                           "Every shard of the run must be given: an incomplete set writes nothing. The merge is "
                           "written inside OUTDIR first and replaces its report files only when complete; OUTDIR "
                           "may not contain, or lie inside, a shard folder.");
  options.positional_help("SHARDDIR...");
  add_site_flags(options);
  add_image_limit_flag(options);
  options.add_options("Output")
      ("o,output", "output folder (new, empty, or an earlier merge, whose report files are replaced)", cxxopts::value<std::string>())
      ("html", "also build the evidence browser OUTDIR/index.html (the shards must have been run with --maps or --html)")
      ("shards", "shard output folders", cxxopts::value<std::vector<std::string>>());
  add_help_flag(options);
  options.parse_positional({"shards"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv, "  bagnet merge out/shard0 out/shard1 out/shard2 -o out/report\n"
                                          "  bagnet merge out/shard* -o out/report --html\n", parsed))
    return kExitOk;
  if (!parsed.count("shards")) throw UsageError("no shard folders given");
  if (!parsed.count("output")) throw UsageError("-o OUTDIR is required");
  const auto dirs = parsed["shards"].as<std::vector<std::string>>();
  const fs::path out_dir = fs::path(parsed["output"].as<std::string>()).lexically_normal();
  const SiteOptions site = read_site_flags(parsed);
  read_image_limit_flag(parsed);

  check_output_apart(out_dir.string(), dirs);
  const MergePlan plan = plan_merge(dirs);
  check_replaceable(out_dir.string());
  ReportFolder out = ReportFolder::open_to_write(out_dir.string());  // one writer at a time
  const int64_t written = write_merge(plan, out, parsed.count("html") ? &site : nullptr);
  std::cerr << "merged " << written << " reports from " << dirs.size() << " folders into " << out_dir.string() << "\n";
  if (written != plan.inputs) {  // samples that failed in their shard, as an unsharded run reports them
    std::cerr << "warning: " << written << " reports for " << plan.inputs << " samples (" << plan.inputs - written
              << " failed in their shard's run)\n";
    return kExitPartial;
  }
  return kExitOk;
}

}  // namespace bagnet::cli
