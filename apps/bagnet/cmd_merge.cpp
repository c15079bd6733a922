// bagnet merge: combine the output folders of `bagnet report --shard I/N` runs into the
// reports.jsonl and summary.json an unsharded run writes (same order, same bytes).
#include "commands.h"
#include "options.h"
#include "report_run.h"
#include "site_output.h"

#include <bagnet/json_text.h>
#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/report.h>
#include <bagnet/site.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>

#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace bagnet::cli {

namespace {

namespace fs = std::filesystem;

nlohmann::json read_summary(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  BAGNET_CHECK(in.good(), ErrorKind::BadInput, path.string(),
               ": missing (was this shard's bagnet report run to the end?)");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::BadInput, path.string(), ": not JSON (", e.what(), ")");
  }
}

// A report's raw maps and image, brought from its shard folder into the merged one (hard links
// where the file system allows, copies otherwise), so that the merged folder stands alone.
void bring_sample_files(const nlohmann::json& report, const fs::path& shard, const fs::path& out_dir) {
  const nlohmann::json& maps = report["maps"];
  if (!maps.is_object()) return;
  const std::string stem = sample_stem(json_integer(report["image"]["index"], "report image.index"));
  std::vector<std::string> files{maps["file"].get<std::string>()};
  for (const char* ext : {".png", ".jpg"})
    if (fs::exists(shard / "images" / (stem + ext))) files.push_back("images/" + stem + ext);
  for (const auto& f : files) {
    const fs::path from = shard / f, to = out_dir / f;
    BAGNET_CHECK(fs::is_regular_file(from), ErrorKind::BadInput, from.string(), ": missing (the report names it)");
    fs::create_directories(to.parent_path());
    std::error_code ec;
    fs::create_hard_link(from, to, ec);
    if (ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  }
}

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
  std::vector<fs::path> dirs;
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
    // Shards of one run only: the same samples, model, preprocessing, settings and shard count.
    if (const auto run = read_run_identity(dir)) {
      if (plan.run) check_same_run(*run, *plan.run, dir, false);
      else plan.run = run;
    }
    const nlohmann::json summary = read_summary(fs::path(dir) / "summary.json");
    if (plan.class_names.is_null() && summary.contains("class_names")) plan.class_names = summary["class_names"];
    plan.dirs.push_back(dir);
    // Numbers of a folder that may come from anywhere: checked before use (json_integer).
    const std::string where = (fs::path(dir) / "summary.json").string();
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

// OUTDIR is replaced as a whole, so only an empty folder or an earlier report output may be there.
void check_replaceable(const fs::path& out_dir) {
  std::error_code ec;
  if (!fs::exists(out_dir, ec)) return;
  BAGNET_CHECK(fs::is_directory(out_dir, ec), ErrorKind::InvalidArgument, out_dir.string(), ": exists and is not a folder");
  const bool empty = fs::is_empty(out_dir, ec);
  const bool report_output = fs::exists(out_dir / "summary.json") || fs::exists(out_dir / "reports.jsonl");
  BAGNET_CHECK(empty || report_output, ErrorKind::InvalidArgument, out_dir.string(),
               ": exists and is not a report folder (the merge replaces the whole folder); give a new or empty one");
}

// A killed merge leaves its staging folder beside OUTDIR; removed when its process is gone.
void remove_stale_staging(const fs::path& out_dir) {
  const fs::path parent = out_dir.parent_path().empty() ? fs::path(".") : out_dir.parent_path();
  const std::string prefix = "." + out_dir.filename().string() + ".";
  std::error_code ec;
  for (auto it = fs::directory_iterator(parent, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    for (const std::string kind : {"merging-", "replaced-"}) {
      if (rest.rfind(kind, 0) != 0) continue;
      const std::string pid = rest.substr(kind.size());
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (::kill(static_cast<pid_t>(std::stoll(pid)), 0) == 0 || errno != ESRCH) continue;  // still running
      std::error_code ignored;
      fs::remove_all(it->path(), ignored);
    }
  }
}

// Writes the merged folder beside OUTDIR and moves it into place only when it is complete.
int64_t write_merge(const MergePlan& plan, const fs::path& out_dir, const SiteOptions* site) {
  remove_stale_staging(out_dir);
  const fs::path staging = out_dir.parent_path() / ("." + out_dir.filename().string() + ".merging-" +
                                                    std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  BAGNET_CHECK(!ec, ErrorKind::BadInput, staging.string(), ": cannot create (", ec.message(), ")");
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ignored;
      if (!path.empty()) fs::remove_all(path, ignored);
    }
  } cleanup{staging};

  // Every shard's lines, one report at a time (memory stays flat), then sorted in place.
  const std::string jsonl = (staging / "reports.jsonl").string();
  nlohmann::json first_report;
  {
    std::ofstream out(jsonl, std::ios::binary);
    for (size_t i = 0; i < plan.dirs.size(); ++i) {
      const fs::path& dir = plan.dirs[i];
      int64_t lines = 0;
      visit_report_lines((dir / "reports.jsonl").string(), [&](const nlohmann::json& r) {
        if (first_report.is_null()) first_report = r;
        check_same_report_kind(r, first_report, dir.string(), " than the first folder's; merge only the shards of one run");
        bring_sample_files(r, dir, staging);  // before the line naming them
        out << to_json_text(r) << '\n';
        ++lines;
      });
      BAGNET_CHECK(lines == plan.reported[i], ErrorKind::BadInput, dir.string(), ": reports.jsonl holds ", lines,
                   " reports, its summary.json says ", plan.reported[i],
                   " (a run still going, or a later run not finished?)");
    }
    out.close();
    BAGNET_CHECK(out.good(), ErrorKind::Runtime, jsonl, ": write failed (disk full?)");
  }
  ReportSummary digest;
  int64_t written = 0;
  sort_report_lines(jsonl, [&](const nlohmann::json& r) {  // refuses a sample reported twice
    digest.add(r);
    ++written;
  });
  nlohmann::json summary = digest.finish(plan.inputs);
  if (!plan.class_names.is_null()) summary["class_names"] = plan.class_names;
  write_text_atomically((staging / "summary.json").string(), to_json_text(summary, 2) + "\n");
  if (plan.run) {  // what an unsharded run of the same inputs writes, so it can be resumed alike
    nlohmann::json whole = *plan.run;
    whole["shard"] = {{"index", 0}, {"count", 1}};
    write_run_identity(staging, whole);
  }
  if (site) build_site_with_progress(staging.string(), *site);

  // The old folder (an earlier merge) goes aside, the new one in, then the old one away.
  const fs::path old = out_dir.parent_path() / ("." + out_dir.filename().string() + ".replaced-" +
                                                std::to_string(::getpid()));
  const bool had_old = fs::exists(out_dir, ec);
  if (had_old) fs::rename(out_dir, old, ec);
  BAGNET_CHECK(!ec, ErrorKind::BadInput, out_dir.string(), ": cannot move the earlier folder aside (", ec.message(), ")");
  fs::rename(staging, out_dir, ec);
  if (ec) {
    std::error_code ignored;
    if (had_old) fs::rename(old, out_dir, ignored);
    fail(ErrorKind::BadInput, out_dir.string(), ": cannot move the merged folder into place (", ec.message(), ")");
  }
  cleanup.path.clear();
  if (had_old) fs::remove_all(old, ec);
  return written;
}

}  // namespace

int run_merge(int argc, char** argv) {
  cxxopts::Options options("bagnet merge",
                           "Combine the output folders of sharded `bagnet report --shard I/N` runs into one "
                           "reports.jsonl (in input order) and summary.json, identical to an unsharded run's. "
                           "Every shard of the run must be given: an incomplete set writes nothing. OUTDIR is "
                           "written beside itself and replaced only when complete.");
  options.positional_help("SHARDDIR...");
  add_site_flags(options);
  add_image_limit_flag(options);
  options.add_options("Output")
      ("o,output", "output folder (new, empty, or an earlier merge, which is replaced)", cxxopts::value<std::string>())
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

  std::error_code ec;
  for (const auto& dir : dirs)
    BAGNET_CHECK(!fs::equivalent(dir, out_dir, ec), ErrorKind::InvalidArgument, "the output folder ", out_dir.string(),
                 " is one of the shard folders (", dir, "); merge into another folder");
  const MergePlan plan = plan_merge(dirs);
  check_replaceable(out_dir);
  const int64_t written = write_merge(plan, out_dir.filename().empty() ? out_dir.parent_path() : out_dir,
                                      parsed.count("html") ? &site : nullptr);
  std::cerr << "merged " << written << " reports from " << dirs.size() << " folders into " << out_dir.string() << "\n";
  if (written != plan.inputs) {  // samples that failed in their shard, as an unsharded run reports them
    std::cerr << "warning: " << written << " reports for " << plan.inputs << " samples (" << plan.inputs - written
              << " failed in their shard's run)\n";
    return kExitPartial;
  }
  return kExitOk;
}

}  // namespace bagnet::cli
