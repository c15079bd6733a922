// Report folders from strangers (report_folder.h), through the library and the real binary: file
// names follow from the sample index; links, FIFOs and names that climb out are refused; merge writes
// only inside OUT and never into or over its inputs; only the project's own temporaries are removed;
// one writer at a time (a SIGKILLed holder's lock is free again); a failed write stops the run and
// leaves the folder resumable.
#include "cli_util.h"
#include "core/confined_file.h"
#include "scratch.h"
#include "test_util.h"

#include <bagnet/error.h>
#include <bagnet/report_folder.h>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace bagnet::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kArea = "report-folder";

CliResult run(const std::string& args, const std::string& prefix = {}) {
  return run_bagnet(args, scratch_folder(kArea), {}, prefix);
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// The 1000-class BagNet-9 test weights on small inputs: fast, and nearly every sample a mistake.
const std::string kModel = " --weights '" + fixture("bagnet9-s9.pth.tar") + "' --resize 40 --crop 32 --topk 2 --patches 1 "
                           "--margin-patches 1 --threads " + std::to_string(test_threads(2));

fs::path make_dataset(const fs::path& dir, int per_class = 2) {
  const std::vector<std::string> classes = {"tabby", "goldfish", "espresso"};
  const std::vector<std::string> images = {"chelsea-224x224.png", "coffee-224x224.png", "rocket-160x208.png"};
  for (size_t c = 0; c < classes.size(); ++c) {
    fs::create_directories(dir / "data" / classes[c]);
    for (int i = 0; i < per_class; ++i)
      fs::copy_file(official("images/" + images[(c + i) % images.size()]), dir / "data" / classes[c] / (std::to_string(i) + ".png"));
  }
  return dir / "data";
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// reports.jsonl with `edit` applied to line `line` (0-based), the others as they were.
void edit_line(const fs::path& jsonl, size_t line, const std::function<void(json&)>& edit) {
  std::istringstream in(slurp_file(jsonl));
  std::string text, out;
  for (size_t i = 0; std::getline(in, text); ++i) {
    if (i == line) {
      json r = json::parse(text);
      edit(r);
      text = r.dump();
    }
    out += text + "\n";
  }
  write_text(jsonl, out);
}

bool one_error_line(const CliResult& r) {
  return r.err.rfind("error: ", 0) == 0 && std::count(r.err.begin(), r.err.end(), '\n') == 1;
}

// Every file under `dir` with its bytes (links as "-> target"), to show nothing there changed.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    const std::string key = fs::relative(it->path(), dir).string();
    if (key == ".bagnet-lock") continue;  // holds the last writer's process id
    if (it->is_symlink()) out[key] = "-> " + fs::read_symlink(it->path()).string();
    else if (it->is_regular_file()) out[key] = slurp_file(it->path());
    else out[key] = "(folder)";
  }
  return out;
}

// One report folder with raw maps, made once per test program.
const fs::path& clean_report() {
  static const fs::path out = [] {
    const fs::path dir = fresh_scratch_folder(kArea, "clean");
    const fs::path data = make_dataset(dir);
    const CliResult r = run("report " + q(data) + kModel + " --maps -o " + q(dir / "out"));
    REQUIRE_MESSAGE(r.code == 0, r.err);
    return dir / "out";
  }();
  return out;
}

fs::path copy_of_clean(const std::string& name) {
  const fs::path dir = fresh_scratch_folder(kArea, name);
  fs::copy(clean_report(), dir / "out", fs::copy_options::recursive);
  fs::remove(dir / "out" / ".bagnet-lock");
  return dir / "out";
}

}  // namespace

TEST_CASE("browse reads only the files a folder's sample indices name, as regular files inside it") {
  const fs::path outside = fresh_scratch_folder(kArea, "outside");
  // A file outside every report folder that would pass as sample 0's maps and image.
  fs::copy_file(clean_report() / "maps/000000.npz", outside / "private.npz");
  const std::string image = fs::directory_iterator(clean_report() / "images")->path().filename().string();
  fs::copy_file(clean_report() / "images" / image, outside / "private.png");
  const auto outside_before = snapshot(outside);

  struct Case {
    std::string name, expect;
    std::function<void(const fs::path&)> make;
  };
  const std::vector<Case> cases = {
      {"absolute maps.file", "maps.file",
       [&](const fs::path& out) { edit_line(out / "reports.jsonl", 0, [&](json& r) { r["maps"]["file"] = (outside / "private.npz").string(); }); }},
      {"climbing maps.file", "maps.file",
       [&](const fs::path& out) { edit_line(out / "reports.jsonl", 0, [&](json& r) { r["maps"]["file"] = "../../outside/private.npz"; }); }},
      {"another sample's maps", "maps.file",
       [&](const fs::path& out) { edit_line(out / "reports.jsonl", 0, [&](json& r) { r["maps"]["file"] = "maps/000001.npz"; }); }},
      {"maps file a link out", "link",
       [&](const fs::path& out) { fs::remove(out / "maps/000000.npz"); fs::create_symlink(outside / "private.npz", out / "maps/000000.npz"); }},
      {"image a link out", "link",
       [&](const fs::path& out) { fs::remove(out / "images" / image); fs::create_symlink(outside / "private.png", out / "images" / image); }},
      {"maps folder a link out", "link",
       [&](const fs::path& out) {
         fs::copy(out / "maps", outside / "maps-copy");
         fs::remove_all(out / "maps");
         fs::create_symlink(outside / "maps-copy", out / "maps");
       }},
      {"reports.jsonl a link out", "link",
       [&](const fs::path& out) {
         fs::copy_file(out / "reports.jsonl", outside / "reports.jsonl", fs::copy_options::overwrite_existing);
         fs::remove(out / "reports.jsonl");
         fs::create_symlink(outside / "reports.jsonl", out / "reports.jsonl");
       }},
      {"FIFO as maps file", "FIFO",
       [&](const fs::path& out) { fs::remove(out / "maps/000000.npz"); REQUIRE(::mkfifo((out / "maps/000000.npz").c_str(), 0644) == 0); }},
      {"FIFO as summary", "FIFO",
       [&](const fs::path& out) { fs::remove(out / "summary.json"); REQUIRE(::mkfifo((out / "summary.json").c_str(), 0644) == 0); }},
      {"maps larger than the report states", "bytes",
       [&](const fs::path& out) {
         std::ofstream(out / "maps/000000.npz", std::ios::binary | std::ios::app) << std::string(1 << 20, '\0');
       }},
      {"a mistake marked correct", "contradicts",
       [&](const fs::path& out) {
         edit_line(out / "reports.jsonl", 0, [&](json& r) {
           r["decision"]["correct"] = !r["decision"]["correct"].get<bool>();
         });
       }},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const fs::path out = copy_of_clean("browse-hostile");
    c.make(out);
    const CliResult r = run("browse " + q(out), "timeout -s KILL 60 ");
    CHECK_MESSAGE(r.code == 3, r.err);
    CHECK_MESSAGE(one_error_line(r), r.err);
    CHECK_MESSAGE(r.err.find(c.expect) != std::string::npos, r.err);
    CHECK(!fs::exists(out / "index.html"));
  }
  fs::remove_all(outside / "maps-copy");
  fs::remove(outside / "reports.jsonl");
  CHECK(snapshot(outside) == outside_before);
  // The untouched copy still builds.
  const fs::path out = copy_of_clean("browse-honest");
  const CliResult r = run("browse " + q(out));
  CHECK_MESSAGE(r.code == 0, r.err);
}

TEST_CASE("merge writes nothing outside OUT, links nothing out, and refuses an OUT around or inside its inputs") {
  const fs::path dir = fresh_scratch_folder(kArea, "merge");
  const fs::path data = make_dataset(dir);
  for (int s = 0; s < 2; ++s)
    REQUIRE(run("report " + q(data) + kModel + " --maps --shard " + std::to_string(s) + "/2 -o " +
                q(dir / "par" / ("s" + std::to_string(s)))).code == 0);
  const fs::path s0 = dir / "par/s0", s1 = dir / "par/s1";
  REQUIRE(run("merge " + q(s0) + " " + q(s1) + " -o " + q(dir / "par")).code == 2);  // OUT holds the shards
  CHECK(fs::exists(s0 / "reports.jsonl"));
  CHECK(fs::exists(s1 / "reports.jsonl"));
  CliResult r = run("merge " + q(s0) + " " + q(s1) + " -o " + q(s1 / "merged"));  // OUT inside a shard
  CHECK(r.code == 2);
  CHECK_MESSAGE(r.err.find("inside") != std::string::npos, r.err);
  CHECK(!fs::exists(s1 / "merged"));

  // A merge into an earlier merge replaces only the report's files: a user's notes stay.
  REQUIRE(run("merge " + q(s0) + " " + q(s1) + " --html -o " + q(dir / "merged")).code == 0);
  write_text(dir / "merged/notes.txt", "mine");
  r = run("merge " + q(s0) + " " + q(s1) + " --html -o " + q(dir / "merged"));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(slurp_file(dir / "merged/notes.txt") == "mine");
  CHECK(fs::exists(dir / "merged/index.html"));
  CHECK(!fs::exists(dir / "merged/.merging"));
  CHECK(!fs::exists(dir / "merged/.replaced"));
  const auto merged_before = snapshot(dir / "merged");

  // Hostile shards: a maps.file that climbs onto a victim's file, an image that is a link to a
  // private file outside. Nothing outside OUT changes, OUT keeps the earlier merge.
  fs::create_directories(dir / "victim");
  write_text(dir / "victim/.bashrc", "keep");
  write_text(dir / "victim/private.png", "secret");
  const auto victim_before = snapshot(dir / "victim");
  for (const std::string html : {"", " --html"}) {
    for (int trick = 0; trick < 2; ++trick) {
      CAPTURE(trick);
      const fs::path hostile = dir / "hostile";
      fs::remove_all(hostile);
      fs::copy(s1, hostile, fs::copy_options::recursive);
      fs::remove(hostile / ".bagnet-lock");
      if (trick == 0) {
        edit_line(hostile / "reports.jsonl", 0, [](json& r) { r["maps"]["file"] = "../../victim/.bashrc"; });
        fs::copy_file(hostile / "maps" / fs::directory_iterator(hostile / "maps")->path().filename(), dir / "payload");
      } else {
        const fs::path image = fs::directory_iterator(hostile / "images")->path();
        fs::remove(image);
        fs::create_symlink(dir / "victim/private.png", image);
      }
      r = run("merge " + q(s0) + " " + q(hostile) + html + " -o " + q(dir / "merged"));
      CHECK_MESSAGE(r.code == 3, r.err);
      CHECK_MESSAGE(one_error_line(r), r.err);
      CHECK(snapshot(dir / "victim") == victim_before);
      CHECK(snapshot(dir / "merged") == merged_before);
      fs::remove(dir / "payload");
    }
  }
  // A folder that is not a report is not replaced.
  fs::create_directories(dir / "thesis");
  write_text(dir / "thesis/chapter1.tex", "text");
  r = run("merge " + q(s0) + " " + q(s1) + " -o " + q(dir / "thesis"));
  CHECK(r.code == 2);
  CHECK(slurp_file(dir / "thesis/chapter1.tex") == "text");
}

TEST_CASE("report removes only the temporaries of its own files, and only with the lock held") {
  const fs::path dir = fresh_scratch_folder(kArea, "temporaries");
  const fs::path data = make_dataset(dir, 1), out = dir / "out";
  fs::create_directories(out / "maps");
  write_text(out / "thesis.tmp-final.docx", "thesis");
  write_text(out / "notes.json.tmp-1-2", "notes");
  write_text(out / "reports.jsonl.tmp-999999-1", "stale");
  write_text(out / "maps/000000.npz.tmp-999999-2", "stale");
  const CliResult r = run("report " + q(data) + kModel + " --maps -o " + q(out));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(slurp_file(out / "thesis.tmp-final.docx") == "thesis");
  CHECK(slurp_file(out / "notes.json.tmp-1-2") == "notes");
  CHECK(!fs::exists(out / "reports.jsonl.tmp-999999-1"));
  CHECK(!fs::exists(out / "maps/000000.npz.tmp-999999-2"));
  // The output may not hold the inputs.
  CHECK(run("report " + q(data) + kModel + " -o " + q(data / "tabby" / "out")).code == 2);
  CHECK(!fs::exists(data / "tabby" / "out"));
}

TEST_CASE("one writer at a time: a second report, resume, merge or browse exits 2 naming the holder; SIGKILL frees it") {
  const fs::path out = copy_of_clean("lock");
  const fs::path data = clean_report().parent_path() / "data";
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t holder = ::fork();
  REQUIRE(holder >= 0);
  if (holder == 0) {  // a writer that holds the lock and is then killed
    const int fd = ::open((out / ".bagnet-lock").c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(1);
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::write(fd, pid.data(), pid.size()) < 0 || ::write(ready[1], "x", 1) != 1) ::_exit(1);
    for (;;) ::pause();
  }
  char byte;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  const auto before = snapshot(out);
  for (const std::string& args : {"report " + q(data) + kModel + " --maps -o " + q(out), "browse " + q(out),
                                  "merge " + q(clean_report()) + " -o " + q(out)}) {
    CAPTURE(args);
    const CliResult r = run(args);
    CHECK(r.code == 2);
    CHECK(one_error_line(r));
    CHECK_MESSAGE(r.err.find("process " + std::to_string(holder)) != std::string::npos, r.err);
    CHECK(r.err.find(out.string()) != std::string::npos);
  }
  CHECK(snapshot(out) == before);
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  const CliResult r = run("browse " + q(out));
  CHECK_MESSAGE(r.code == 0, r.err);

  // Two runs started together into one folder: one writes, the other is turned away (or, when the
  // first has finished, resumes it); never two writers' lines.
  const fs::path both = fresh_scratch_folder(kArea, "both") / "out";
  const std::string report = "'" + std::string(BAGNET_EXE) + "' report " + q(data) + kModel + " -o " + q(both);
  const std::string script = "( " + report + " 2>/dev/null; echo $? > " + q(both.parent_path() / "a") + " ) & " + report +
                             " 2>/dev/null; echo $? > " + q(both.parent_path() / "b") + "; wait";
  REQUIRE(std::system(script.c_str()) == 0);
  const std::string a = slurp_file(both.parent_path() / "a"), b = slurp_file(both.parent_path() / "b");
  CHECK(((a == "0\n" || a == "2\n") && (b == "0\n" || b == "2\n") && (a == "0\n" || b == "0\n")));
  std::istringstream lines(slurp_file(both / "reports.jsonl"));
  std::set<int64_t> indices;
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) indices.insert(json::parse(line)["image"]["index"].get<int64_t>());
  CHECK(count == 6);
  CHECK(indices.size() == 6);
}

TEST_CASE("a failed write stops the run with one line, exit 4; the folder resumes to the uninterrupted run's files") {
  // A tmpfs an earlier, interrupted run left mounted would stop the folder's removal.
  if (std::system(("umount " + q(scratch_folder(kArea) / "full" / "small") + " 2>/dev/null").c_str()) != 0) {
    // nothing was mounted there: the usual case
  }
  const fs::path dir = fresh_scratch_folder(kArea, "full");
  const fs::path data = clean_report().parent_path() / "data";
  // A file size limit (RLIMIT_FSIZE, SIGXFSZ ignored): writes past it fail with EFBIG.
  const fs::path out = dir / "out";
  CliResult r = run("report " + q(data) + kModel + " --maps -o " + q(out), "trap '' XFSZ; ulimit -f 12; ");
  CHECK(r.code == 4);
  CHECK_MESSAGE(one_error_line(r), r.err);
  CHECK_MESSAGE(r.err.find("write failed") != std::string::npos, r.err);
  CHECK(!fs::exists(out / "summary.json"));
  r = run("report " + q(data) + kModel + " --maps -o " + q(out));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(slurp_file(out / "reports.jsonl") == slurp_file(clean_report() / "reports.jsonl"));
  CHECK(slurp_file(out / "summary.json") == slurp_file(clean_report() / "summary.json"));

  // A small file system, where the test may mount one (root, and a kernel that lets it).
  const fs::path small = dir / "small";
  fs::create_directories(small);
  if (std::system(("mount -t tmpfs -o size=48k tmpfs " + q(small) + " 2>/dev/null").c_str()) != 0) {
    MESSAGE("skipped the full-disk case: cannot mount a small tmpfs here (needs root)");
    return;
  }
  r = run("report " + q(data) + kModel + " --maps -o " + q(small / "out"));
  CHECK(r.code == 4);
  CHECK_MESSAGE(one_error_line(r), r.err);
  CHECK_MESSAGE(r.err.find("No space left on device") != std::string::npos, r.err);
  fs::copy(small / "out", dir / "moved", fs::copy_options::recursive);
  CHECK(std::system(("umount " + q(small)).c_str()) == 0);
  r = run("report " + q(data) + kModel + " --maps -o " + q(dir / "moved"));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(slurp_file(dir / "moved/reports.jsonl") == slurp_file(clean_report() / "reports.jsonl"));
}

TEST_CASE("library: a write error injected in the file layer fails the append and leaves complete lines") {
  const fs::path dir = fresh_scratch_folder(kArea, "inject") / "out";
  {
    bagnet::ReportFolder folder = bagnet::ReportFolder::open_to_write(dir.string());
    const std::string line = R"({"schema":"bagnet-lens/report","version":2,"image":{"index":0}})";
    folder.append_report(line);
    bagnet::detail::set_write_failure(30, ENOSPC);
    try {
      folder.append_report(line);
      FAIL("the injected failure was not reported");
    } catch (const bagnet::Error& e) {
      CHECK(e.kind() == bagnet::ErrorKind::Output);
      CHECK(std::string(e.what()).find("No space left on device") != std::string::npos);
    }
    CHECK_THROWS_AS(folder.write_summary(json::object()), bagnet::Error);
    bagnet::detail::set_write_failure(-1, 0);
    CHECK(!fs::exists(dir / "summary.json"));
  }
  bagnet::ReportFolder again = bagnet::ReportFolder::open_to_write(dir.string());
  int lines = 0;
  again.scan_reports(true, [&](const json&) { ++lines; });
  CHECK(lines == 1);
  CHECK(fs::file_size(dir / "reports.jsonl") == slurp_file(dir / "reports.jsonl").find('\n') + 1);
  // A second writer in the same process is refused too (flock is per open file).
  CHECK_THROWS_WITH_AS(bagnet::ReportFolder::open_to_write(dir.string()), doctest::Contains("is being written by process"),
                       bagnet::Error);
}

TEST_CASE("library: names derive from the index; check_output_apart") {
  CHECK(bagnet::report_files::maps(17) == "maps/000017.npz");
  CHECK(bagnet::report_files::image(1234567, false) == "images/1234567.jpg");
  CHECK_THROWS_AS(bagnet::report_files::stem(-1), bagnet::Error);
  const fs::path dir = fresh_scratch_folder(kArea, "apart");
  fs::create_directories(dir / "in/sub");
  CHECK_THROWS_AS(bagnet::check_output_apart((dir / "in/sub/out").string(), {(dir / "in").string()}), bagnet::Error);
  CHECK_THROWS_AS(bagnet::check_output_apart(dir.string(), {(dir / "in/sub").string()}), bagnet::Error);
  CHECK_THROWS_AS(bagnet::check_output_apart((dir / "in/../in").string(), {(dir / "in").string()}), bagnet::Error);
  fs::create_symlink(dir / "in", dir / "link");
  CHECK_THROWS_AS(bagnet::check_output_apart((dir / "link/x").string(), {(dir / "in").string()}), bagnet::Error);
  CHECK_NOTHROW(bagnet::check_output_apart((dir / "out").string(), {(dir / "in").string(), (dir / "missing").string()}));
  CHECK_NOTHROW(bagnet::check_output_apart((dir / "in2").string(), {(dir / "in").string()}));
}
