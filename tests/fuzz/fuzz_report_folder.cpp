// A whole report folder from a stranger (report_folder.h): its files, each possibly a link out of
// the folder or a FIFO, through the site builder and through merge's planning and file handling
// (run.json, summary.json, every report's sample files adopted into a staging folder, sorted,
// swapped in). Correct: a site, a merge, or bagnet::Error; a file outside the folders changed, a
// hang on a FIFO, a crash or a sanitizer report is a finding.
//
// Input: records of [kind byte][length: 2 bytes, little-endian][bytes]. kind & 7 picks the file
// (kNames); kind & 8 makes it a link to a file outside the folder, kind & 16 a FIFO.
#include "fuzz_input.h"

#include <bagnet/report.h>
#include <bagnet/report_folder.h>
#include <bagnet/site.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace {

namespace fs = std::filesystem;

const char* const kNames[] = {"reports.jsonl",     "summary.json",      "run.json",          "maps/000000.npz",
                              "maps/000001.npz",   "images/000000.png", "images/000001.png", "images/000000.jpg"};
const std::string kSecret = "outside: never read into a site, never written";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_folder(const fs::path& dir, const fs::path& outside, const uint8_t* data, size_t size) {
  fs::create_directories(dir / "maps");
  fs::create_directories(dir / "images");
  for (size_t at = 0; at + 3 <= size;) {
    const uint8_t kind = data[at];
    const size_t length = std::min<size_t>(data[at + 1] | (data[at + 2] << 8), size - at - 3);
    const fs::path path = dir / kNames[kind & 7];
    std::error_code ec;
    fs::remove(path, ec);
    if (kind & 8) {
      fs::create_symlink(outside, path, ec);
    } else if (kind & 16) {
      ::mkfifo(path.c_str(), 0600);
    } else {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(data + at + 3), static_cast<std::streamsize>(length));
    }
    at += 3 + length;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path root = bagnet::fuzz::scratch_folder() / "folder-case";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root);
  const fs::path outside = root / "outside.txt", folder = root / "report", merged = root / "merged";
  std::ofstream(outside, std::ios::binary) << kSecret;
  write_folder(folder, outside, data, size);

  bagnet::fuzz::expect_clean([&] { bagnet::build_site(folder.string()); });
  bagnet::fuzz::expect_clean([&] {
    const bagnet::ReportFolder shard = bagnet::ReportFolder::open(folder.string());
    if (const auto run = shard.read_run()) bagnet::check_same_run(*run, *run, shard.dir(), false);
    const nlohmann::json summary = shard.read_summary();
    bagnet::ReportFolder out = bagnet::ReportFolder::open_to_write(merged.string());
    bagnet::ReportFolder staging = out.open_staging(".merging");
    shard.visit_reports([&](const nlohmann::json& r) {
      if (r.contains("maps") && r.at("maps").is_object()) staging.adopt_sample_files(shard, r);
      staging.append_report(r.dump());
    });
    bagnet::ReportSummary digest;
    staging.sort_reports([&](const nlohmann::json& r) { digest.add(r); });
    staging.write_summary(digest.finish(static_cast<int64_t>(summary.size())));
    bagnet::build_site(staging);
    out.replace_with(std::move(staging));
  });
  if (slurp(outside) != kSecret) std::abort();  // written through a link: a finding
  return 0;
}
