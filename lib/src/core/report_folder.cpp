// The report folder: layout, confined reading, the writers' lock, appending, merging's staging and
// swap (report_folder.h).
#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/json_text.h>
#include <bagnet/npy.h>
#include <bagnet/report.h>
#include <bagnet/report_folder.h>

#include "confined_file.h"
#include "report_lines.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <sstream>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace bagnet {

namespace fs = std::filesystem;
using detail::Fd;

namespace report_files {

std::string stem(int64_t index) {
  BAGNET_CHECK(index >= 0, ErrorKind::InvalidArgument, "sample index must be >= 0, got ", index);
  char text[32];
  std::snprintf(text, sizeof text, "%06lld", static_cast<long long>(index));
  return text;
}

std::string maps(int64_t index) { return std::string(kMapsDir) + "/" + stem(index) + ".npz"; }

std::string image(int64_t index, bool png) { return std::string(kImagesDir) + "/" + stem(index) + (png ? ".png" : ".jpg"); }

}  // namespace report_files

namespace {

// Bounds on what a folder's own small files may hold before they are read.
constexpr uint64_t kMaxRunBytes = 1 << 20;             // run.json: a few hundred bytes in practice
constexpr uint64_t kMaxSummaryBytes = uint64_t(1) << 30;  // summary.json: grows with the mistakes
constexpr const char* kStagingNames[] = {".merging", ".replaced"};

// Names this program writes inside maps/ and images/, and the temporaries of their atomic writes.
const std::regex& map_name() {
  static const std::regex r("[0-9]{6,19}\\.npz");
  return r;
}
const std::regex& image_name() {
  static const std::regex r("[0-9]{6,19}\\.(png|jpg)");
  return r;
}
const std::regex& temporary_name() {
  static const std::regex r("(reports\\.jsonl|summary\\.json|run\\.json|index\\.html|[0-9]{6,19}\\.(npz|png|jpg))"
                            "\\.tmp-[0-9]+-[0-9]+");
  return r;
}
const std::regex& generation_name() {
  static const std::regex r("site-[0-9]{1,9}");
  return r;
}

// The names in folder `dir` (without . and ..), or nothing when it cannot be listed.
std::vector<std::string> entries(int dir) {
  std::vector<std::string> out;
  const int copy = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (copy < 0) return out;
  DIR* d = ::fdopendir(copy);
  if (!d) {
    ::close(copy);
    return out;
  }
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

bool is_folder_at(int dir, const std::string& name) {
  struct stat st {};
  return ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

// Removes `name` in `dir` and, when it is a real folder, everything in it; links are removed, never
// followed.
void remove_tree_at(int dir, const std::string& name) {
  if (is_folder_at(dir, name)) {
    Fd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub.valid())
      for (const auto& e : entries(sub.get())) remove_tree_at(sub.get(), e);
    ::unlinkat(dir, name.c_str(), AT_REMOVEDIR);
  } else {
    ::unlinkat(dir, name.c_str(), 0);
  }
}

// Whether every entry of the sub-folder `name` (recursively) is one this program writes there;
// `allowed(relative, is_folder)` judges each entry's path relative to that sub-folder.
bool holds_only(int dir, const std::string& name, const std::function<bool(const std::string&, bool)>& allowed,
                const std::string& prefix = "") {
  Fd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub.valid()) return false;
  for (const auto& e : entries(sub.get())) {
    const bool folder = is_folder_at(sub.get(), e);
    if (!allowed(prefix + e, folder)) return false;
    if (folder && !holds_only(sub.get(), e, allowed, prefix + e + "/")) return false;
  }
  return true;
}

// Removes the temporaries of atomic writes of the folder's own files (temporary_name) in `dir`.
void remove_temporaries(int dir) {
  for (const auto& name : entries(dir))
    if (std::regex_match(name, temporary_name())) ::unlinkat(dir, name.c_str(), 0);
}

bool site_entry(const std::string& path, bool folder) {
  static const std::regex files("app\\.js|style\\.css|data/(overview|list)\\.js|data/detail/[0-9]{1,12}\\.js|"
                                "thumbs/[0-9]{6,19}\\.jpg(\\.tmp-[0-9]+-[0-9]+)?");  // a killed build's temporaries too
  if (folder) return path == "data" || path == "data/detail" || path == "thumbs";
  return std::regex_match(path, files);
}

// Whether `name` in `dir` is a site generation ("site-G", a real folder) holding only the files the
// site builder writes, so that it may be moved or removed.
bool is_own_generation(int dir, const std::string& name) {
  return std::regex_match(name, generation_name()) && is_folder_at(dir, name) && holds_only(dir, name, site_entry);
}

// A hostile report can claim any map size; the file it names is read only when its size fits the
// arrays the report says it holds (float32 [rows, cols] per class, plus the npz's headers).
uint64_t max_maps_bytes(const nlohmann::json& maps, const std::string& where) {
  const int64_t rows = json_integer(maps.at("size").at(0), where + ": maps.size");
  const int64_t cols = json_integer(maps.at("size").at(1), where + ": maps.size");
  const auto classes = static_cast<int64_t>(maps.at("classes").size());
  constexpr int64_t kSide = 1 << 16;
  BAGNET_CHECK(rows > 0 && cols > 0 && rows <= kSide && cols <= kSide && classes > 0 && classes <= kSide,
               ErrorKind::BadInput, where, ": maps of ", classes, " classes of ", rows, "x", cols,
               " (each side and the class count in 1..", kSide, ")");
  return static_cast<uint64_t>(classes) * (static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols) * 4 + 1024) + 4096;
}

std::string holder_of(int lock_fd) {
  char text[32] = {};
  const ssize_t n = ::pread(lock_fd, text, sizeof text - 1, 0);
  std::string pid = n > 0 ? std::string(text, static_cast<size_t>(n)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return !pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos ? pid : "unknown";
}

nlohmann::json parse_json(const std::vector<uint8_t>& bytes, const std::string& shown) {
  try {
    return nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::BadInput, shown, ": not JSON (", e.what(), ")");
  }
}

}  // namespace

struct ReportFolder::State {
  std::string dir;
  Fd fd;              // the folder
  Fd lock;            // held while writing (open_to_write); staging folders rely on their parent's
  bool writable = false;
  Fd append;          // reports.jsonl, opened for appending at the first line
  Fd parent;          // staging folders: the folder they are in, and their name there; removed with
  std::string staged; // the object unless replace_with moved their files into place
};

ReportFolder::ReportFolder(std::unique_ptr<State> state) : state_(std::move(state)) {}
ReportFolder::ReportFolder(ReportFolder&&) noexcept = default;
ReportFolder& ReportFolder::operator=(ReportFolder&&) noexcept = default;
ReportFolder::~ReportFolder() {
  if (state_ && !state_->staged.empty()) {
    state_->fd = Fd();
    remove_tree_at(state_->parent.get(), state_->staged);
  }
}

const std::string& ReportFolder::dir() const { return state_->dir; }
bool ReportFolder::writable() const { return state_->writable; }
std::string ReportFolder::path(const std::string& relative) const { return (fs::path(state_->dir) / relative).string(); }

ReportFolder ReportFolder::open(const std::string& dir) {
  auto state = std::make_unique<State>();
  state->dir = dir;
  state->fd = detail::open_folder(dir);
  return ReportFolder(std::move(state));
}

ReportFolder ReportFolder::open_to_write(const std::string& dir, bool create) {
  std::error_code ec;
  if (create) fs::create_directories(dir, ec);
  BAGNET_CHECK(!ec, ErrorKind::Output, dir, ": cannot create the output folder (", ec.message(), ")");
  auto state = std::make_unique<State>();
  state->dir = dir;
  state->fd = detail::open_folder(dir);
  state->writable = true;
  state->lock = Fd(::openat(state->fd.get(), report_files::kLock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  BAGNET_CHECK(state->lock.valid(), ErrorKind::Output, dir, "/", report_files::kLock, ": cannot create the lock file (",
               std::strerror(errno), ")");
  if (::flock(state->lock.get(), LOCK_EX | LOCK_NB) != 0) {
    BAGNET_CHECK(errno == EWOULDBLOCK || errno == EINTR, ErrorKind::Output, dir, ": cannot lock (", std::strerror(errno), ")");
    fail(ErrorKind::InvalidArgument, dir, " is being written by process ", holder_of(state->lock.get()),
         " (it holds ", report_files::kLock, "); wait for it to end or use another folder");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(state->lock.get(), 0) == 0) detail::write_all(state->lock.get(), pid.data(), pid.size(), (fs::path(dir) / report_files::kLock).string());
  // What a killed writer of this folder left; with the lock held no live writer owns any of it.
  const int fd = state->fd.get();
  remove_temporaries(fd);
  for (const char* sub : {report_files::kMapsDir, report_files::kImagesDir}) {
    const Fd folder = detail::open_subfolder(fd, sub, (fs::path(dir) / sub).string(), false);
    if (folder.valid()) remove_temporaries(folder.get());
  }
  for (const char* staging : kStagingNames) remove_tree_at(fd, staging);
  return ReportFolder(std::move(state));
}

ReportFolder ReportFolder::open_staging(const std::string& name) const {
  BAGNET_CHECK(state_->writable && state_->lock.valid(), ErrorKind::InvalidArgument, state_->dir,
               ": a staging folder needs the folder open to write");
  remove_tree_at(state_->fd.get(), name);
  Fd sub = detail::open_subfolder(state_->fd.get(), name, path(name), true);
  BAGNET_CHECK(sub.valid(), ErrorKind::Output, path(name), ": cannot create");
  auto state = std::make_unique<State>();
  state->dir = path(name);
  state->fd = std::move(sub);
  state->writable = true;
  state->parent = Fd(::dup(state_->fd.get()));
  state->staged = name;
  return ReportFolder(std::move(state));
}

// --- reading ---

bool ReportFolder::has(const std::string& relative) const {
  return detail::open_regular(state_->fd.get(), relative, path(relative), true).valid();
}

std::vector<uint8_t> ReportFolder::read_file(const std::string& relative, uint64_t max_bytes) const {
  const Fd fd = detail::open_regular(state_->fd.get(), relative, path(relative), false);
  return detail::read_all(fd.get(), max_bytes, path(relative));
}

nlohmann::json ReportFolder::read_summary() const {
  const std::string shown = path(report_files::kSummary);
  const Fd fd = detail::open_regular(state_->fd.get(), report_files::kSummary, shown, true);
  BAGNET_CHECK(fd.valid(), ErrorKind::BadInput, state_->dir, ": not a report folder (no summary.json; was its bagnet "
               "report run to the end?)");
  const nlohmann::json summary = parse_json(detail::read_all(fd.get(), kMaxSummaryBytes, shown), shown);
  BAGNET_CHECK(summary.is_object() && summary.value("schema", "") == kSummarySchema, ErrorKind::BadInput, shown,
               ": not a ", kSummarySchema, " document");
  BAGNET_CHECK(summary.value("version", nlohmann::json()) == kSummaryVersion, ErrorKind::BadInput, shown,
               ": summary version ", summary.value("version", nlohmann::json()).dump(), ", this program reads version ",
               kSummaryVersion);
  return summary;
}

std::optional<nlohmann::json> ReportFolder::read_run() const {
  const std::string shown = path(report_files::kRun);
  const Fd fd = detail::open_regular(state_->fd.get(), report_files::kRun, shown, true);
  if (!fd.valid()) return std::nullopt;
  nlohmann::json identity = parse_json(detail::read_all(fd.get(), kMaxRunBytes, shown), shown);
  BAGNET_CHECK(identity.is_object(), ErrorKind::BadInput, shown, ": not a report run");
  for (const char* key : {"samples", "sources_sha256", "model", "settings", "shard"})
    BAGNET_CHECK(identity.contains(key), ErrorKind::BadInput, shown, ": no '", key, "' (not a report run)");
  BAGNET_CHECK(identity["model"].is_object() && identity["settings"].is_object() && identity["shard"].is_object(),
               ErrorKind::BadInput, shown, ": model, settings and shard must be objects");
  return identity;
}

void ReportFolder::visit_reports(const std::function<void(const nlohmann::json&)>& visit) const {
  const std::string shown = path(report_files::kReports);
  const Fd fd = detail::open_regular(state_->fd.get(), report_files::kReports, shown, true);
  BAGNET_CHECK(fd.valid(), ErrorKind::BadInput, state_->dir, ": not a report folder (no reports.jsonl)");
  detail::FdStreamBuf buffer(fd.get(), shown);
  std::istream in(&buffer);
  detail::visit_report_stream(in, shown, visit);
}

void ReportFolder::scan_reports(bool repair, const std::function<void(const nlohmann::json&)>& visit) const {
  const std::string shown = path(report_files::kReports);
  const Fd fd = detail::open_regular(state_->fd.get(), report_files::kReports, shown, true);
  if (!fd.valid()) return;
  detail::FdStreamBuf buffer(fd.get(), shown);
  std::istream in(&buffer);
  bool torn = false;
  const std::streamoff complete = detail::scan_report_stream(in, shown, visit, torn);
  if (!torn || !repair) return;
  BAGNET_CHECK(state_->writable, ErrorKind::InvalidArgument, state_->dir, ": repairing needs the folder open to write");
  const Fd out(::openat(state_->fd.get(), report_files::kReports, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  BAGNET_CHECK(out.valid() && ::ftruncate(out.get(), static_cast<off_t>(complete)) == 0, ErrorKind::Output, shown,
               ": cannot cut off the incomplete last line (", std::strerror(errno), ")");
}

SampleFiles ReportFolder::sample_files(const nlohmann::json& report) const {
  const int64_t index = json_integer(report.at("image").at("index"), "report image.index");
  const nlohmann::json& maps = report.at("maps");
  const std::string where = path(report_files::kReports) + ": sample " + std::to_string(index);
  BAGNET_CHECK(maps.is_object(), ErrorKind::BadInput, state_->dir, ": sample ", index,
               " has no raw maps (write the report with maps, e.g. bagnet report --maps or --html)");
  SampleFiles files;
  files.maps = report_files::maps(index);
  const nlohmann::json& stored = maps.at("file");
  BAGNET_CHECK(stored.is_string() && stored.get<std::string>() == files.maps, ErrorKind::BadInput, where,
               ": maps.file is ", to_json_text(stored).substr(0, 80), ", expected \"", files.maps,
               "\" (file names in a report folder follow from the sample index)");
  BAGNET_CHECK(has(files.maps), ErrorKind::BadInput, path(files.maps), ": missing (the report names it)");
  for (const bool png : {true, false})
    if (!files.image && has(report_files::image(index, png))) files.image = report_files::image(index, png);
  return files;
}

std::vector<std::pair<std::string, torch::Tensor>> ReportFolder::read_maps(const nlohmann::json& report) const {
  const SampleFiles files = sample_files(report);
  const uint64_t limit = max_maps_bytes(report.at("maps"), path(report_files::kReports) + ": sample " +
                                                                to_json_text(report.at("image").at("index")));
  return load_npz(read_file(files.maps, limit), path(files.maps));
}

// --- writing ---

void ReportFolder::write_run(const nlohmann::json& identity) {
  write_text_atomically(path(report_files::kRun), to_json_text(identity, 2) + "\n");
}

void ReportFolder::write_summary(const nlohmann::json& summary) {
  write_text_atomically(path(report_files::kSummary), to_json_text(summary, 2) + "\n");
}

void ReportFolder::make_sample_folders() {
  for (const char* sub : {report_files::kMapsDir, report_files::kImagesDir})
    BAGNET_CHECK(detail::open_subfolder(state_->fd.get(), sub, path(sub), true).valid(), ErrorKind::Output, path(sub),
                 ": cannot create");
}

std::string ReportFolder::write_maps(int64_t index, const std::vector<std::pair<std::string, torch::Tensor>>& arrays) {
  const std::string name = report_files::maps(index);
  save_npz(path(name), arrays);
  return name;
}

void ReportFolder::append_report(const std::string& line) {
  const std::string shown = path(report_files::kReports);
  if (!state_->append.valid()) {
    state_->append = Fd(::openat(state_->fd.get(), report_files::kReports,
                                 O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644));
    if (!state_->append.valid())
      fail(errno == ELOOP ? ErrorKind::BadInput : ErrorKind::Output, shown, ": cannot open for appending (",
           std::strerror(errno), ")");
    struct stat st {};
    BAGNET_CHECK(::fstat(state_->append.get(), &st) == 0 && S_ISREG(st.st_mode), ErrorKind::BadInput, shown,
                 ": not a regular file");
  }
  // One write per line: a kill loses at most this line, which the rerun cuts off.
  detail::write_all(state_->append.get(), (line + '\n').data(), line.size() + 1, shown);
}

void ReportFolder::sort_reports(const std::function<void(const nlohmann::json&)>& visit) {
  state_->append = Fd();  // the sorted file replaces the one appended to
  write_file_atomically(path(report_files::kReports), [&](std::ostream& out) {
    visit_reports([&](const nlohmann::json& report) {
      out << to_json_text(report) << '\n';
      if (visit) visit(report);
    });
  });
}

void ReportFolder::adopt_sample_files(const ReportFolder& source, const nlohmann::json& report) {
  const SampleFiles files = source.sample_files(report);
  std::vector<std::pair<std::string, uint64_t>> wanted{
      {files.maps, max_maps_bytes(report.at("maps"), source.path(report_files::kReports))}};
  if (files.image) wanted.emplace_back(*files.image, report_files::kMaxImageBytes);
  for (const auto& [relative, limit] : wanted) {
    const std::string folder = fs::path(relative).parent_path().string(), name = fs::path(relative).filename().string();
    struct stat from {};
    const Fd in = detail::open_regular(source.state_->fd.get(), relative, source.path(relative), false, &from);
    BAGNET_CHECK(static_cast<uint64_t>(from.st_size) <= limit, ErrorKind::BadInput, source.path(relative), ": ",
                 from.st_size, " bytes, at most ", limit, " expected for what the report states");
    const Fd from_folder = detail::open_subfolder(source.state_->fd.get(), folder, source.path(folder), false);
    const Fd to_folder = detail::open_subfolder(state_->fd.get(), folder, path(folder), true);
    BAGNET_CHECK(from_folder.valid() && to_folder.valid(), ErrorKind::BadInput, source.path(relative), ": vanished");
    if (::linkat(from_folder.get(), name.c_str(), to_folder.get(), name.c_str(), 0) == 0) {
      // The name may have been swapped for a link between the check and linkat (which never
      // follows one): keep the new entry only if it is the very file checked above.
      struct stat linked {};
      if (::fstatat(to_folder.get(), name.c_str(), &linked, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(linked.st_mode) &&
          linked.st_dev == from.st_dev && linked.st_ino == from.st_ino)
        continue;
      ::unlinkat(to_folder.get(), name.c_str(), 0);
      fail(ErrorKind::BadInput, source.path(relative), ": changed while being merged");
    }
    BAGNET_CHECK(errno != EEXIST, ErrorKind::BadInput, source.path(relative), ": sample given by two folders");
    // Another file system, or one without hard links: a copy from the descriptor checked above.
    const Fd out(::openat(to_folder.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    BAGNET_CHECK(out.valid(), ErrorKind::Output, path(relative), ": cannot create (", std::strerror(errno), ")");
    const std::vector<uint8_t> bytes = detail::read_all(in.get(), limit, source.path(relative));
    detail::write_all(out.get(), bytes.data(), bytes.size(), path(relative));
  }
}

std::string ReportFolder::make_site_generation() {
  const int fd = state_->fd.get();
  int64_t highest = 0;
  for (const auto& name : entries(fd))
    if (std::regex_match(name, generation_name())) highest = std::max<int64_t>(highest, std::stoll(name.substr(5)));
  const std::string name = "site-" + std::to_string(highest + 1);
  BAGNET_CHECK(::mkdirat(fd, name.c_str(), 0755) == 0, ErrorKind::Output, path(name), ": cannot create (",
               std::strerror(errno), ")");
  const Fd generation = detail::open_subfolder(fd, name, path(name), false);
  const Fd data = detail::open_subfolder(generation.get(), "data", path(name + "/data"), true);
  BAGNET_CHECK(data.valid() && detail::open_subfolder(data.get(), "detail", path(name + "/data/detail"), true).valid() &&
                   detail::open_subfolder(generation.get(), "thumbs", path(name + "/thumbs"), true).valid(),
               ErrorKind::Output, path(name), ": cannot create its folders");
  return name;
}

void ReportFolder::remove_site_generations(const std::string& keep) {
  const int fd = state_->fd.get();
  for (const auto& name : entries(fd))
    if (name != keep && is_own_generation(fd, name)) remove_tree_at(fd, name);
}

void ReportFolder::replace_with(ReportFolder&& staging) {
  BAGNET_CHECK(state_->writable && state_->lock.valid(), ErrorKind::InvalidArgument, state_->dir,
               ": replacing needs the folder open to write");
  const int fd = state_->fd.get();
  // Refused before anything moves: files in maps/ or images/ that this program did not write.
  const std::pair<const char*, const std::regex*> samples[] = {{report_files::kMapsDir, &map_name()},
                                                               {report_files::kImagesDir, &image_name()}};
  for (const auto& sample : samples) {
    const std::regex& pattern = *sample.second;
    if (is_folder_at(fd, sample.first))
      BAGNET_CHECK(holds_only(fd, sample.first,
                              [&](const std::string& p, bool folder) { return !folder && std::regex_match(p, pattern); }),
                   ErrorKind::InvalidArgument, path(sample.first), " holds files bagnet did not write; move them away or "
                   "merge into another folder");
  }
  std::vector<std::string> old{report_files::kSummary, report_files::kIndex, report_files::kReports, report_files::kRun,
                               report_files::kMapsDir, report_files::kImagesDir};
  for (const auto& name : entries(fd))
    if (is_own_generation(fd, name)) old.push_back(name);
  std::vector<std::string> fresh;
  for (const auto& name : entries(staging.state_->fd.get()))
    if (std::regex_match(name, generation_name())) fresh.push_back(name);
  for (const char* name : {report_files::kMapsDir, report_files::kImagesDir, report_files::kRun, report_files::kReports,
                           report_files::kIndex, report_files::kSummary})
    fresh.emplace_back(name);  // summary.json last: until it is there, the folder reads as unfinished

  for (const auto& name : fresh) {  // a name in the way that is not the report's own would stop the swap halfway
    struct stat st {};
    BAGNET_CHECK(std::find(old.begin(), old.end(), name) != old.end() ||
                     ::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0,
                 ErrorKind::InvalidArgument, path(name), " holds files bagnet did not write; move it away or merge into "
                 "another folder");
  }
  const std::string aside = kStagingNames[1];
  remove_tree_at(fd, aside);
  const Fd replaced = detail::open_subfolder(fd, aside, path(aside), true);
  BAGNET_CHECK(replaced.valid(), ErrorKind::Output, path(aside), ": cannot create");
  for (const auto& name : old)
    BAGNET_CHECK(::renameat(fd, name.c_str(), replaced.get(), name.c_str()) == 0 || errno == ENOENT, ErrorKind::Output,
                 path(name), ": cannot move aside (", std::strerror(errno), ")");
  for (const auto& name : fresh)
    BAGNET_CHECK(::renameat(staging.state_->fd.get(), name.c_str(), fd, name.c_str()) == 0 || errno == ENOENT,
                 ErrorKind::Output, path(name), ": cannot move into place (", std::strerror(errno), ")");
  remove_tree_at(fd, aside);
  const ReportFolder done = std::move(staging);  // its destructor removes the emptied staging folder
}

// --- paths ---

void check_output_apart(const std::string& output, const std::vector<std::string>& inputs) {
  std::error_code ec;
  const fs::path out = fs::weakly_canonical(fs::absolute(output, ec), ec);
  const auto inside = [](const fs::path& inner, const fs::path& outer) {
    auto i = inner.begin();
    for (auto o = outer.begin(); o != outer.end(); ++o, ++i)
      if (i == inner.end() || *i != *o) return false;
    return true;
  };
  for (const auto& input : inputs) {
    std::error_code missing;
    const fs::path in = fs::canonical(input, missing);
    if (missing) continue;
    BAGNET_CHECK(!inside(out, in) && !inside(in, out), ErrorKind::InvalidArgument, "the output folder ", output,
                 inside(out, in) ? (in == out ? " is the input " : " lies inside the input ")
                                 : " contains the input ",
                 input, "; write into a folder apart from every input");
  }
}

}  // namespace bagnet
