#pragma once
// A report folder (`bagnet report -o OUTDIR`): the one owner of its layout, for the commands that
// write one (report, resume, merge, the site builder) and those that read one (browse, merge).
//
//   OUTDIR/reports.jsonl           one report per line (docs/report-schema.md), in sample order once finished
//   OUTDIR/summary.json            the run's summary, written last
//   OUTDIR/run.json                the run's identity (samples, model, settings, shard), from the start
//   OUTDIR/maps/NNNNNN.npz         raw maps of a sample's explained classes (--maps)
//   OUTDIR/images/NNNNNN.png|jpg   the sample's image (--maps)
//   OUTDIR/index.html, site-G/     the evidence browser (site.h)
//   OUTDIR/.bagnet-lock            the writers' lock (flock), holding the writer's process id
//
// Folders travel between people and machines, so every folder is read as a stranger's:
// - names inside it are derived from sample indices (report_files), never taken from a file: a
//   report naming another file than its own is refused, naming the line;
// - every file read is a regular file inside the folder: opened one path component at a time
//   without following links and without blocking (a FIFO), its size checked before it is read;
// - one writer at a time: writers hold an advisory lock (flock) that a crashed process releases;
// - nothing is written, linked or removed outside the folder, and only files of the names below
//   (and the temporaries of their atomic writes) are ever removed.
//
//   bagnet::ReportFolder out = bagnet::ReportFolder::open_to_write("out");  // locked until destroyed
//   out.write_run(identity);  out.append_report(line);  out.finish_reports(...);  out.write_summary(summary);
//   bagnet::ReportFolder in = bagnet::ReportFolder::open("shard0");  in.visit_reports(...);
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bagnet {

// File names inside a report folder, relative to it.
namespace report_files {
inline constexpr const char* kReports = "reports.jsonl";
inline constexpr const char* kSummary = "summary.json";
inline constexpr const char* kRun = "run.json";
inline constexpr const char* kIndex = "index.html";
inline constexpr const char* kLock = ".bagnet-lock";
inline constexpr const char* kMapsDir = "maps";
inline constexpr const char* kImagesDir = "images";
// A stored image is at most 512 px on its long side (site.h, save_sample_image): far below this.
inline constexpr uint64_t kMaxImageBytes = 64 << 20;
// "000017": a sample's index zero-padded to at least 6 digits, the stem of its files. Throws
// Error(InvalidArgument) for a negative index.
std::string stem(int64_t index);
// "maps/000017.npz".
std::string maps(int64_t index);
// "images/000017.png" (`png`) or "images/000017.jpg".
std::string image(int64_t index, bool png);
}  // namespace report_files

// Error(InvalidArgument) when the folder `output` is, contains or lies inside one of `inputs`
// (files or folders; those that do not exist are skipped), e.g. "the output folder out lies inside
// the input folder data; ...". Compared after resolving links.
void check_output_apart(const std::string& output, const std::vector<std::string>& inputs);

// The sample files a report folder holds for one report (report.maps.file and the image), already
// checked: the names are the derived ones.
struct SampleFiles {
  std::string maps;                 // "maps/000017.npz"
  std::optional<std::string> image; // "images/000017.png" or ".jpg", when present
};

class ReportFolder {
 public:
  // An existing report folder, to read (browse's input, merge's shards). Throws Error(BadInput)
  // "<dir>: not a folder". Takes no lock.
  static ReportFolder open(const std::string& dir);
  // Creates `dir` (and its parents; unless `create` is false) or opens it, and takes its lock: Error(InvalidArgument) "<dir>
  // is being written by process P" when another writer holds it (the lock is free again when that
  // process ends, however it ends). Removes what a killed writer of this folder left: temporaries of
  // atomic writes of the folder's own files, and a merge's staging folders.
  static ReportFolder open_to_write(const std::string& dir, bool create = true);
  // A fresh folder `name` inside this one (which must be open to write), covered by this folder's
  // lock: a merge writes its result there first. Anything of that name is removed first.
  ReportFolder open_staging(const std::string& name) const;

  ReportFolder(ReportFolder&&) noexcept;
  ReportFolder& operator=(ReportFolder&&) noexcept;
  ~ReportFolder();

  const std::string& dir() const;
  // `relative` joined onto the folder, for messages and for writers of the folder's own files.
  std::string path(const std::string& relative) const;
  bool writable() const;

  // --- reading (any folder) ---
  // Whether the folder holds `relative` as a regular file (a link or FIFO there throws BadInput).
  bool has(const std::string& relative) const;
  // summary.json, checked to be a summary of this program's schema and version. Throws
  // Error(BadInput) "<dir>: not a report folder (no summary.json)" when missing.
  nlohmann::json read_summary() const;
  // run.json, or nothing when the folder has none (a folder from before run.json existed).
  std::optional<nlohmann::json> read_run() const;
  // reports.jsonl's reports in image.index order, one at a time (memory does not grow with the
  // file); Error(BadInput) naming file and line for a damaged line or a sample reported twice.
  void visit_reports(const std::function<void(const nlohmann::json&)>& visit) const;
  // The same in file order; a torn last line (a killed writer) is dropped, and with `repair`
  // (folder open to write) cut off. A missing reports.jsonl has no reports.
  void scan_reports(bool repair, const std::function<void(const nlohmann::json&)>& visit) const;
  // The files of `report` (a line of this folder's reports.jsonl): Error(BadInput) when its
  // maps.file is not the name derived from its index, or when a file is not a regular file inside
  // the folder.
  SampleFiles sample_files(const nlohmann::json& report) const;
  // The arrays of `report`'s maps file, read only when its size fits the map size and classes the
  // report states (float32 [rows, cols] per class).
  std::vector<std::pair<std::string, torch::Tensor>> read_maps(const nlohmann::json& report) const;
  // The bytes of the folder's file `relative` (a regular file inside the folder, at most
  // `max_bytes`).
  std::vector<uint8_t> read_file(const std::string& relative, uint64_t max_bytes) const;

  // --- writing (open_to_write or open_staging) ---
  void write_run(const nlohmann::json& identity);
  void write_summary(const nlohmann::json& summary);
  // Creates maps/ and images/ (never through a link).
  void make_sample_folders();
  // Writes `report`'s maps as maps/NNNNNN.npz (atomically); returns that name.
  std::string write_maps(int64_t index, const std::vector<std::pair<std::string, torch::Tensor>>& arrays);
  // Appends one line to reports.jsonl (opened for appending at the first call). Every failure
  // throws Error(Output): the run must stop, the folder stays resumable.
  void append_report(const std::string& line);
  // Rewrites reports.jsonl in image.index order, atomically, calling `visit` with each report.
  void sort_reports(const std::function<void(const nlohmann::json&)>& visit);
  // Brings `report`'s sample files from `source` (another folder) into this one: hard links where
  // the file system allows, copies otherwise; only regular files inside `source`, under their
  // derived names, never over an existing file.
  void adopt_sample_files(const ReportFolder& source, const nlohmann::json& report);
  // A new generation folder of the evidence browser, "site-G" one above the highest present, with
  // its sub-folders data/detail and thumbs; returns its name.
  std::string make_site_generation();
  // Removes the generations other than `keep` whose every file is one the site builder writes
  // (others are left as they are).
  void remove_site_generations(const std::string& keep);
  // Replaces this folder's report files (reports.jsonl, summary.json, run.json, index.html, maps/,
  // images/, site-G/) by those of `staging` (open_staging): the old ones go aside, the new ones in,
  // summary.json last, then the old ones away. Other files of the folder are left alone. Refuses
  // (before touching anything) when maps/ or images/ hold files this program did not write.
  void replace_with(ReportFolder&& staging);

 private:
  struct State;
  explicit ReportFolder(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// --- the identity of a report run (run.json) ---

// `samples` inputs whose sources and labels (in order) hash to `sources_sha256`; `report` is the
// JSON of a report made with the run's model and settings (a probe): its "model", "settings" and
// kind of raw maps are taken over.
nlohmann::json run_identity(int64_t samples, const std::string& sources_sha256, const nlohmann::json& report,
                            int64_t shard, int64_t shards);
// Throws Error(InvalidArgument) naming the first difference between `old` (found in `folder`) and
// `now`, e.g. "... holds a run over 12 samples, these inputs are 13; use another -o folder".
// `compare_shard`: false for merge, whose shards differ in their index by design.
void check_same_run(const nlohmann::json& old, const nlohmann::json& now, const std::string& folder, bool compare_shard);
// The raw maps a report says it has, as compared between runs: null, or {"stride", "dense"}.
nlohmann::json maps_setting(const nlohmann::json& report);
// Throws Error(InvalidArgument) when the report `old` (found in `where`) was made with another
// model, preprocessing, settings or kind of raw maps than `now`; `hint` ends the message.
void check_same_report_kind(const nlohmann::json& old, const nlohmann::json& now, const std::string& where,
                            const std::string& hint);

}  // namespace bagnet
