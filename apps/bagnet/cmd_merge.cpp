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
  const std::string stem = sample_stem(report["image"]["index"].get<int64_t>());
  std::vector<std::string> files{maps["file"].get<std::string>()};
  for (const char* ext : {".png", ".jpg"})
    if (fs::exists(shard / "images" / (stem + ext))) files.push_back("images/" + stem + ext);
  for (const auto& f : files) {
    const fs::path from = shard / f, to = out_dir / f;
    BAGNET_CHECK(fs::is_regular_file(from), ErrorKind::BadInput, from.string(), ": missing (the report names it)");
    fs::create_directories(to.parent_path());
    std::error_code ec;
    fs::remove(to, ec);
    fs::create_hard_link(from, to, ec);
    if (ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  }
}

}  // namespace

int run_merge(int argc, char** argv) {
  cxxopts::Options options("bagnet merge",
                           "Combine the output folders of sharded `bagnet report --shard I/N` runs into one "
                           "reports.jsonl (in input order) and summary.json, identical to an unsharded run's.");
  options.positional_help("SHARDDIR...");
  add_site_flags(options);
  add_image_limit_flag(options);
  options.add_options("Output")
      ("o,output", "output folder", cxxopts::value<std::string>())
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
  const fs::path out_dir = parsed["output"].as<std::string>();
  const SiteOptions site = read_site_flags(parsed);
  read_image_limit_flag(parsed);

  std::error_code ec;
  for (const auto& dir : dirs)
    BAGNET_CHECK(!fs::equivalent(dir, out_dir, ec), ErrorKind::InvalidArgument, "the output folder ", out_dir.string(),
                 " is one of the shard folders (", dir, "); merge into another folder");

  std::vector<nlohmann::json> all;
  std::vector<fs::path> home;  // the shard folder of each report in `all`
  int64_t inputs = 0, count = 0, total = -1;
  std::set<int64_t> seen_shards;
  std::optional<nlohmann::json> first_run;
  nlohmann::json first_report, first_summary;
  for (const auto& dir : dirs) {
    // Shards of one run only: the same samples, model, preprocessing and settings.
    if (const auto run = read_run_identity(dir)) {
      if (first_run) check_same_run(*run, *first_run, dir, false);
      else first_run = run;
    }
    const nlohmann::json summary = read_summary(fs::path(dir) / "summary.json");
    if (first_summary.is_null()) first_summary = summary;
    const auto reports = read_report_lines((fs::path(dir) / "reports.jsonl").string(), false);
    BAGNET_CHECK(static_cast<int64_t>(reports.size()) == summary.value("reported", int64_t(-1)), ErrorKind::BadInput,
                 dir, ": reports.jsonl holds ", reports.size(), " reports, its summary.json says ",
                 summary.value("reported", int64_t(-1)), " (a run still going, or a later run not finished?)");
    inputs += summary.at("inputs").get<int64_t>();
    if (summary.contains("shard")) {
      const auto& s = summary["shard"];
      BAGNET_CHECK(count == 0 || count == s["count"].get<int64_t>(), ErrorKind::InvalidArgument, dir,
                   ": shard of ", s["count"], ", the others are shards of ", count);
      count = s["count"].get<int64_t>();
      total = s["samples_total"].get<int64_t>();
      BAGNET_CHECK(seen_shards.insert(s["index"].get<int64_t>()).second, ErrorKind::InvalidArgument, dir,
                   ": shard ", s["index"], " given twice");
    }
    for (const auto& r : reports) {
      if (first_report.is_null()) first_report = r;
      check_same_report_kind(r, first_report, dir, " than the first folder's; merge only the shards of one run");
      all.push_back(r);
      home.push_back(dir);
    }
  }
  fs::create_directories(out_dir, ec);
  BAGNET_CHECK(!ec, ErrorKind::BadInput, out_dir.string(), ": cannot create the output folder (", ec.message(), ")");
  for (size_t i = 0; i < all.size(); ++i) bring_sample_files(all[i], home[i], out_dir);  // before the lines naming them
  write_report_lines((out_dir / "reports.jsonl").string(), all);  // sorts; refuses a sample reported twice
  std::sort(all.begin(), all.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a["image"]["index"].get<int64_t>() < b["image"]["index"].get<int64_t>();
  });
  nlohmann::json summary = summarize_reports(all, inputs);
  if (first_summary.contains("class_names")) summary["class_names"] = first_summary["class_names"];
  write_text_atomically((out_dir / "summary.json").string(), to_json_text(summary, 2) + "\n");
  if (first_run) {  // what an unsharded run of the same inputs writes, so it can be resumed alike
    nlohmann::json whole = *first_run;
    whole["shard"] = {{"index", 0}, {"count", 1}};
    write_run_identity(out_dir, whole);
  }
  if (parsed.count("html")) build_site_with_progress(out_dir.string(), site);
  std::cerr << "merged " << all.size() << " reports from " << dirs.size() << " folders into " << out_dir.string() << "\n";
  bool complete = static_cast<int64_t>(all.size()) == inputs;
  if (count > 0 && static_cast<int64_t>(seen_shards.size()) != count) {
    std::cerr << "warning: " << seen_shards.size() << " of " << count << " shards given\n";
    complete = false;
  }
  if (total >= 0 && inputs != total) complete = false;
  if (!complete) {
    std::cerr << "warning: " << all.size() << " reports for " << (total >= 0 ? total : inputs)
              << " samples: the merge is incomplete\n";
    return kExitPartial;
  }
  return kExitOk;
}

}  // namespace bagnet::cli
