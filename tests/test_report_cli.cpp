// The real binary's report, merge and patches commands: schema-valid output, sharded + merged equal
// to unsharded byte for byte, resume after a kill (simulated by truncating reports.jsonl mid-line)
// equal to an uninterrupted run, refusal to mix runs, and patch grids with their JSON.
#include "cli_util.h"
#include <bagnet/json_text.h>
#include <bagnet/model.h>
#include "scratch.h"
#include "json_schema.h"
#include "test_util.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

using namespace bagnet::test;
namespace fs = std::filesystem;

namespace {

fs::path scratch_dir(const std::string& name) { return fresh_scratch_folder("report-cli", name); }

CliResult run(const std::string& args) { return run_bagnet(args, scratch_folder("report-cli")); }

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// Small inputs keep the 1000-class BagNet-9 fixture fast; the decisions are those of test
// weights, so nearly every labelled sample is a mistake, which exercises the error paths.
const std::string kModel = " --weights '" + fixture("bagnet9-s9.pth.tar") + "' --resize 72 --crop 64 --threads " + std::to_string(test_threads(2));

std::string inputs() {
  std::string s;
  for (int repeat = 0; repeat < 2; ++repeat)
    for (const std::string name : {"chelsea-224x224.png", "coffee-224x224.png", "rocket-160x208.png"})
      s += " '" + official("images/" + name) + "'";
  return s;
}

SchemaValidator schema() {
  std::ifstream in(std::string(BAGNET_SOURCE_DIR) + "/docs/report-schema.json");
  REQUIRE(in.good());
  return SchemaValidator(nlohmann::json::parse(in));
}

void check_valid(const nlohmann::json& report) {
  for (const auto& e : schema().validate(report)) FAIL_CHECK(e);
}

}  // namespace

TEST_CASE("report of one image on stdout is schema-valid") {
  const CliResult r = run("report '" + official("images/rocket-160x208.png") + "'" + kModel +
                          " --topk 3 --patches 2 --verify-occlusion 4");
  REQUIRE(r.code == 0);
  const auto json = nlohmann::json::parse(r.out);
  check_valid(json);
  CHECK(json["decision"].is_null());
  CHECK(json["predictions"].size() == 3);
  CHECK(json["image"]["original_size"] == nlohmann::json({160, 208}));
  CHECK(json["image"]["input_size"] == nlohmann::json({64, 64}));
  CHECK(json["model"]["sha256"].get<std::string>().size() == 64);
  for (const auto& c : json["classes"]) CHECK(c["evidence_check"]["matches"] == true);
  REQUIRE(json["occlusion"].size() == 1);
  CHECK(json["occlusion"][0]["masked"] == 4);
}

TEST_CASE("sharded + merged equals unsharded; a killed run resumes to the same output") {
  const fs::path dir = scratch_dir("shards");
  const std::string settings = kModel + " --topk 2 --patches 2";
  const CliResult whole = run("report" + inputs() + settings + " -o " + q(dir / "whole"));
  REQUIRE(whole.code == 0);
  const std::string reports = slurp_file(dir / "whole" / "reports.jsonl");
  const std::string summary = slurp_file(dir / "whole" / "summary.json");
  CHECK(std::count(reports.begin(), reports.end(), '\n') == 6);
  std::istringstream lines(reports);
  std::string line;
  int64_t index = 0;
  while (std::getline(lines, line)) {
    const auto json = nlohmann::json::parse(line);
    check_valid(json);
    CHECK(json["image"]["index"] == index++);
  }
  CHECK(nlohmann::json::parse(summary)["reported"] == 6);

  for (int shard = 0; shard < 3; ++shard)
    REQUIRE(run("report" + inputs() + settings + " --shard " + std::to_string(shard) + "/3 -o " +
                q(dir / ("s" + std::to_string(shard)))).code == 0);
  CHECK(nlohmann::json::parse(slurp_file(dir / "s1" / "summary.json"))["inputs"] == 2);
  // An incomplete set of shards writes nothing and names what is missing.
  const CliResult partial = run("merge " + q(dir / "s0") + " " + q(dir / "s2") + " -o " + q(dir / "partial"));
  CHECK(partial.code == 3);
  CHECK_MESSAGE(partial.err.find("shard 1 of 3 missing (2 of 6 samples); nothing written") != std::string::npos, partial.err);
  CHECK(std::count(partial.err.begin(), partial.err.end(), '\n') == 1);
  CHECK_FALSE(fs::exists(dir / "partial"));
  CliResult r0;
  const CliResult merged = run("merge " + q(dir / "s2") + " " + q(dir / "s0") + " " + q(dir / "s1") + " -o " + q(dir / "merged"));
  REQUIRE(merged.code == 0);
  CHECK(slurp_file(dir / "merged" / "reports.jsonl") == reports);
  CHECK(slurp_file(dir / "merged" / "summary.json") == summary);
  CHECK(run("merge " + q(dir / "s0") + " " + q(dir / "s0") + " -o " + q(dir / "twice")).code == 2);
  // A summary.json claiming an absurd shard count (or none that is an integer) is refused at once,
  // not looped over.
  for (const std::string count : {"9000000000000000000", "1e300", "0"}) {
    const fs::path hostile = dir / "hostile";
    fs::remove_all(hostile);
    fs::copy(dir / "s1", hostile, fs::copy_options::recursive);
    const std::string text = slurp_file(hostile / "summary.json");
    const size_t at = text.find("\"count\": 3");
    REQUIRE(at != std::string::npos);
    std::ofstream(hostile / "summary.json", std::ios::binary | std::ios::trunc)
        << text.substr(0, at) << "\"count\": " << count << text.substr(at + 10);
    const CliResult r = run("merge " + q(dir / "s0") + " " + q(hostile) + " -o " + q(dir / "hostile-merge"));
    CHECK_MESSAGE(r.code == 3, count << ": " << r.err);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_FALSE(fs::exists(dir / "hostile-merge"));
  }
  // The merge is what an unsharded run writes, run.json included.
  CHECK(slurp_file(dir / "merged" / "run.json") == slurp_file(dir / "whole" / "run.json"));
  // Merging again replaces the earlier merge's files (a user's other files there stay); a folder
  // that is not a report is not replaced.
  std::ofstream(dir / "merged" / "mine.txt") << "from before";
  REQUIRE(run("merge " + q(dir / "s0") + " " + q(dir / "s1") + " " + q(dir / "s2") + " -o " + q(dir / "merged/")).code == 0);
  CHECK(slurp_file(dir / "merged" / "mine.txt") == "from before");
  CHECK(slurp_file(dir / "merged" / "reports.jsonl") == reports);
  fs::create_directories(dir / "notes");
  std::ofstream(dir / "notes" / "mine.txt") << "keep";
  r0 = run("merge " + q(dir / "s0") + " " + q(dir / "s1") + " " + q(dir / "s2") + " -o " + q(dir / "notes"));
  CHECK(r0.code == 2);
  CHECK(r0.err.find("is not a report folder") != std::string::npos);
  CHECK(fs::exists(dir / "notes" / "mine.txt"));
  for (const auto& entry : fs::recursive_directory_iterator(dir))  // no staging folder left behind
    CHECK(entry.path().filename().string().find(".merging") == std::string::npos);

  // A folder holds one run: one more input, or another shard of the inputs, is refused, untouched.
  const std::string more = inputs() + " '" + official("images/coffee-224x224.png") + "'";
  CliResult r = run("report" + more + settings + " -o " + q(dir / "whole"));
  CHECK(r.code == 2);
  CHECK(r.err.find("holds a run over 6 samples, these inputs are 7") != std::string::npos);
  r = run("report" + inputs() + settings + " --shard 0/1 -o " + q(dir / "s0"));
  CHECK(r.code == 2);
  CHECK(r.err.find("holds shard 0/3, this run is shard 0/1") != std::string::npos);
  CHECK(slurp_file(dir / "whole" / "reports.jsonl") == reports);
  // Merge refuses shards made with other settings, and an output folder that is one of its inputs.
  REQUIRE(run("report" + inputs() + kModel + " --topk 3 --patches 2 --shard 1/3 -o " + q(dir / "s1-top3")).code == 0);
  r = run("merge " + q(dir / "s0") + " " + q(dir / "s1-top3") + " " + q(dir / "s2") + " -o " + q(dir / "mixed"));
  CHECK(r.code == 2);
  CHECK(r.err.find("topk 3 there, 2 in the first folder") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "mixed" / "reports.jsonl"));
  fs::remove(dir / "s1-top3" / "run.json");  // a folder from before run.json: the reports' settings still differ
  CHECK(run("merge " + q(dir / "s0") + " " + q(dir / "s1-top3") + " " + q(dir / "s2") + " -o " + q(dir / "mixed")).code == 2);
  const std::string s0 = slurp_file(dir / "s0" / "reports.jsonl");
  r = run("merge " + q(dir / "s0") + " " + q(dir / "s1") + " " + q(dir / "s2") + " -o " + q(dir / "s0"));
  CHECK(r.code == 2);
  CHECK(r.err.find("is the input") != std::string::npos);
  CHECK(slurp_file(dir / "s0" / "reports.jsonl") == s0);

  // A kill in the middle of writing line 4: lines 1-3 complete, line 4 torn, no summary yet.
  fs::create_directories(dir / "killed");
  size_t cut = 0;
  for (int i = 0; i < 3; ++i) cut = reports.find('\n', cut) + 1;
  cut += 40;
  std::ofstream(dir / "killed" / "reports.jsonl", std::ios::binary) << reports.substr(0, cut);
  const CliResult resumed = run("report" + inputs() + settings + " -o " + q(dir / "killed"));
  REQUIRE(resumed.code == 0);
  CHECK_MESSAGE(resumed.err.find("3 from an earlier run") != std::string::npos, resumed.err);
  CHECK(slurp_file(dir / "killed" / "reports.jsonl") == reports);
  CHECK(slurp_file(dir / "killed" / "summary.json") == summary);

  // Resuming with other settings or other inputs would mix two runs: refused, file untouched.
  CHECK(run("report" + inputs() + kModel + " --topk 3 --patches 2 -o " + q(dir / "killed")).code == 2);
  CHECK(run("report '" + official("images/coffee-224x224.png") + "'" + settings + " -o " + q(dir / "killed")).code == 2);
  CHECK(slurp_file(dir / "killed" / "reports.jsonl") == reports);
}

TEST_CASE("report: bad inputs are skipped with exit 1, usage errors exit 2") {
  const fs::path dir = scratch_dir("bad");
  std::ofstream(dir / "broken.png") << "not a png";
  const CliResult r = run("report '" + official("images/coffee-224x224.png") + "' " + q(dir / "broken.png") + kModel +
                          " -o " + q(dir / "out"));
  CHECK(r.code == 1);
  const size_t named = r.err.find("broken.png");
  CHECK(named != std::string::npos);
  CHECK(r.err.find("broken.png", named + 1) == std::string::npos);  // the path once per error line
  CHECK(nlohmann::json::parse(slurp_file(dir / "out" / "summary.json"))["reported"] == 1);
  CHECK(run("report '" + official("images/coffee-224x224.png") + "'" + kModel + " --shard 3/3 -o " + q(dir / "x")).code == 2);
  CHECK(run("report '" + official("images/coffee-224x224.png") + "'" + kModel + " --shard 1/2").code == 2);
  CHECK(run("merge -o " + q(dir / "m")).code == 2);
  CHECK(run("merge " + q(dir / "nothing") + " -o " + q(dir / "m")).code == 3);
}

TEST_CASE("batched report runs are byte-identical to one image at a time, whatever the batch and decode threads") {
  const fs::path dir = scratch_dir("batched");
  std::ofstream(dir / "broken.png") << "not a png";
  // Two input sizes (--crop none keeps each image's aspect), so batches also break at a size
  // change, and an unreadable file in the middle of a batch; --topk 3 with labels-free images.
  const std::string images = inputs() + " " + q(dir / "broken.png") + inputs();
  const std::string settings = " --weights '" + fixture("bagnet9-s9.pth.tar") + "' --resize 48 --crop none --topk 3 --patches 2 --threads " +
                               std::to_string(test_threads(2));
  const CliResult one = run("report" + images + settings + " --batch-size 1 --decode-threads 1 -o " + q(dir / "one"));
  REQUIRE(one.code == 1);  // the broken file
  CHECK(std::count(one.err.begin(), one.err.end(), '\n') == 3);  // its line, "wrote ...", "1 of 13 samples failed"
  const auto without_folder = [](std::string err, const fs::path& out) {
    for (size_t at = err.find(out.string()); at != std::string::npos; at = err.find(out.string()))
      err.replace(at, out.string().size(), "OUT");
    return err;
  };
  const std::string reports = slurp_file(dir / "one" / "reports.jsonl");
  const std::string summary = slurp_file(dir / "one" / "summary.json");
  CHECK(std::count(reports.begin(), reports.end(), '\n') == 12);
  int run_number = 0;
  for (const std::string flags : {" --batch-size 4 --decode-threads 3", " --batch-size 64", "", " --batch-size 3 --decode-threads 1"}) {
    const fs::path out = dir / ("batched" + std::to_string(run_number++));
    const CliResult batched = run("report" + images + settings + flags + " -o " + q(out));
    CHECK_MESSAGE(batched.code == 1, flags);
    CHECK_MESSAGE(without_folder(batched.err, out) == without_folder(one.err, dir / "one"), flags);
    CHECK_MESSAGE(slurp_file(out / "reports.jsonl") == reports, flags);
    CHECK_MESSAGE(slurp_file(out / "summary.json") == summary, flags);
  }
  // patches: the same grids and listing whatever the batch.
  const std::string patch_settings = " --weights '" + fixture("bagnet9-s9.pth.tar") + "' --resize 48 --crop none -k 3 --class 0,1 --threads " +
                                     std::to_string(test_threads(2));
  CHECK(run("patches" + images + patch_settings + " --batch-size 1 -o " + q(dir / "p1")).code == 1);
  CHECK(run("patches" + images + patch_settings + " --batch-size 5 --decode-threads 3 -o " + q(dir / "p5")).code == 1);
  CHECK(slurp_file(dir / "p1" / "patches.json") == slurp_file(dir / "p5" / "patches.json"));
  CHECK(slurp_file(dir / "p1" / "class_0000.png") == slurp_file(dir / "p5" / "class_0000.png"));
  CHECK(run("report" + inputs() + settings + " --batch-size 0").code == 2);
  CHECK(run("report" + inputs() + settings + " --batch-size x").code == 2);
  CHECK(run("report" + inputs() + settings + " --decode-threads 0").code == 2);
}

TEST_CASE("--precision bfloat16: recorded in every report, not mixed into a float32 run, refused where the CPU lacks it") {
  const fs::path dir = scratch_dir("precision");
  const std::string settings = kModel + " --topk 2 --patches 2";
  CHECK(run("report" + inputs() + settings + " --precision fp16 -o " + q(dir / "bad")).code == 2);
  const CliResult reduced = run("report" + inputs() + settings + " --precision bf16 -o " + q(dir / "bf16"));
  if (!bagnet::cpu_has_bfloat16()) {
    CHECK(reduced.code == 4);
    CHECK(reduced.err.rfind("error: bfloat16 needs a CPU with AVX512-BF16 or AMX", 0) == 0);
    CHECK(!fs::exists(dir / "bf16" / "reports.jsonl"));
    return;
  }
  REQUIRE(reduced.code == 0);
  const std::string lines = slurp_file(dir / "bf16" / "reports.jsonl");
  std::istringstream in(lines);
  int reports = 0;
  for (std::string line; std::getline(in, line); ++reports)
    CHECK(nlohmann::json::parse(line)["model"]["precision"] == "bfloat16");
  CHECK(reports == 6);
  CHECK(nlohmann::json::parse(slurp_file(dir / "bf16" / "run.json"))["model"]["precision"] == "bfloat16");
  // Resuming the folder in float32 would mix two precisions in one run.
  const CliResult resumed = run("report" + inputs() + settings + " -o " + q(dir / "bf16"));
  CHECK(resumed.code == 2);
  CHECK(resumed.err.find("computed in bfloat16") != std::string::npos);
  CHECK(run("report" + inputs() + settings + " --precision bfloat16 -o " + q(dir / "bf16")).code == 0);
  CHECK(slurp_file(dir / "bf16" / "reports.jsonl") == lines);
  const CliResult predicted = run("predict" + inputs() + kModel + " --precision bf16 --json");
  REQUIRE(predicted.code == 0);
  CHECK(nlohmann::json::parse(predicted.out)["precision"] == "bfloat16");
}

TEST_CASE("patches: a grid per class and JSON listing every patch") {
  const fs::path dir = scratch_dir("patches");
  const CliResult r = run("patches" + inputs() + kModel + " --class 0,goldfish,999 -k 4 --per-image 1 -o " + q(dir));
  REQUIRE(r.code == 0);
  const auto json = nlohmann::json::parse(slurp_file(dir / "patches.json"));
  CHECK(json["images"] == 6);
  REQUIRE(json["classes"].size() == 3);
  CHECK(json["classes"][1]["class"] == 1);
  for (const auto& c : json["classes"]) {
    CAPTURE(c["class"]);
    const auto& patches = c["patches"];
    CHECK(patches.size() <= 4);
    std::set<int64_t> samples;
    for (size_t k = 0; k < patches.size(); ++k) {
      CHECK(patches[k]["logit"].get<double>() > 0);
      if (k > 0) CHECK(patches[k - 1]["logit"].get<double>() >= patches[k]["logit"].get<double>());
      CHECK(samples.insert(patches[k]["sample"].get<int64_t>()).second);  // --per-image 1
      const auto& box = patches[k]["box_original"];
      CHECK(box[2].get<double>() > box[0].get<double>());
    }
    if (!patches.empty()) CHECK(fs::file_size(dir / c["grid"].get<std::string>()) > 1000);
  }
  CHECK(run("patches" + inputs() + kModel + " --class nosuchclass --overwrite -o " + q(dir)).code == 2);
  CHECK(run("patches" + inputs() + kModel + " --sign sideways -o " + q(dir)).code == 2);
}

TEST_CASE("patches: a non-empty output folder is refused before any work unless --overwrite") {
  const fs::path dir = scratch_dir("patches-again");
  const std::string args = "patches" + inputs() + kModel + " --class 0,1 -k 2 -o " + q(dir);
  REQUIRE(run(args).code == 0);
  const auto before = fs::last_write_time(dir / "patches.json");
  CliResult r = run(args);
  CHECK(r.code == 2);
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find("--overwrite") != std::string::npos);
  CHECK(fs::last_write_time(dir / "patches.json") == before);
  r = run(args + " --overwrite");
  CHECK(r.code == 0);
  // An existing empty folder is fine.
  const fs::path empty = scratch_dir("patches-empty");
  CHECK(run("patches" + inputs() + kModel + " --class 0 -k 2 -o " + q(empty)).code == 0);
}

TEST_CASE("patches: a class without a patch of the sign asked for is named, with its strongest logit") {
  // With these test weights no 9 px patch of chelsea has a positive logit for class 2, and none of
  // class 1 a negative one.
  const std::string chelsea = " '" + official("images/chelsea-224x224.png") + "'";
  const fs::path dir = scratch_dir("patches-none");
  CliResult r = run("patches" + chelsea + kModel + " --class 2 -k 2 -o " + q(dir / "positive"));
  CHECK(r.code == 0);
  CAPTURE(r.err);
  CHECK(r.err.find("warning: class 2 great white shark: no patch with positive evidence in 1 image(s) (highest patch "
                   "logit -") != std::string::npos);
  CHECK(r.err.find("try --sign negative") != std::string::npos);
  CHECK(nlohmann::json::parse(slurp_file(dir / "positive" / "patches.json"))["classes"][0]["grid"].is_null());
  r = run("patches" + chelsea + kModel + " --class 1,2 -k 2 --sign negative -o " + q(dir / "negative"));
  CHECK(r.code == 0);
  CAPTURE(r.err);
  CHECK(r.err.find("warning: class 1 goldfish: no patch with negative evidence in 1 image(s) (lowest patch logit ") !=
        std::string::npos);
  CHECK(r.err.find("try --sign positive") != std::string::npos);
  CHECK(r.err.find("class 2") == std::string::npos);  // class 2 has negative patches: a grid, no warning
  CHECK(fs::exists(dir / "negative" / "class_0002.png"));
}

TEST_CASE("report on an image folder: true labels, mistakes with flip sets, summary") {
  const fs::path dir = scratch_dir("folder");
  fs::create_directories(dir / "data" / "a");
  fs::create_directories(dir / "data" / "b");
  fs::copy_file(official("images/chelsea-224x224.png"), dir / "data" / "a" / "chelsea.png");
  fs::copy_file(official("images/coffee-224x224.png"), dir / "data" / "a" / "coffee.png");
  fs::copy_file(official("images/rocket-160x208.png"), dir / "data" / "b" / "rocket.png");
  const CliResult r = run("report " + q(dir / "data") + kModel + " --topk 2 --patches 2 -o " + q(dir / "out"));
  REQUIRE(r.code == 0);
  const std::string text = slurp_file(dir / "out" / "reports.jsonl");
  std::istringstream lines(text);
  std::string line;
  int64_t errors = 0;
  while (std::getline(lines, line)) {
    const auto report = nlohmann::json::parse(line);
    check_valid(report);
    const auto& d = report["decision"];
    REQUIRE(d.is_object());
    CHECK(d["true_class"] == (report["image"]["source"].get<std::string>().find("rocket") != std::string::npos ? 1 : 0));
    CHECK(report["image"]["label"] == d["true_class"]);
    bool true_explained = false;
    for (const auto& c : report["classes"]) true_explained = true_explained || c["class"] == d["true_class"];
    CHECK(true_explained);
    if (d["correct"].get<bool>()) continue;
    ++errors;
    CHECK(d["margin"].get<double>() ==
          doctest::Approx(d["predicted_logit"].get<double>() - d["true_logit"].get<double>()));
    CHECK(d["flip_set"]["exact_at"] == "bag");
    if (d["flip_set"]["possible"].get<bool>())
      CHECK(d["flip_set"]["patches"].size() == d["flip_set"]["size"].get<size_t>());
  }
  const auto summary = nlohmann::json::parse(slurp_file(dir / "out" / "summary.json"));
  CHECK(summary["labelled"] == 3);
  CHECK(summary["errors"].size() == static_cast<size_t>(errors));
  CHECK(summary["correct"].get<int64_t>() + errors == 3);
}

TEST_CASE("a folder with images directly in it is unlabelled for report and predict, as for heatmap") {
  const fs::path dir = scratch_dir("photos");
  fs::create_directories(dir / "photos" / "more");
  fs::copy_file(official("images/rocket-160x208.png"), dir / "photos" / "rocket.png");
  fs::copy_file(official("images/chelsea-224x224.png"), dir / "photos" / "more" / "chelsea.png");
  CliResult r = run("report " + q(dir / "photos") + kModel + " --topk 1 --patches 1 -o " + q(dir / "out"));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  std::istringstream lines(slurp_file(dir / "out" / "reports.jsonl"));
  std::vector<std::string> sources;
  for (std::string line; std::getline(lines, line);) {
    const auto report = nlohmann::json::parse(line);
    CHECK(report["decision"].is_null());
    CHECK(report["image"]["label"].is_null());
    sources.push_back(report["image"]["source"].get<std::string>());
  }
  CHECK(sources == std::vector<std::string>{(dir / "photos" / "more" / "chelsea.png").string(),
                                            (dir / "photos" / "rocket.png").string()});
  r = run("predict " + q(dir / "photos") + kModel + " --topk 1 --json");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const auto predictions = nlohmann::json::parse(r.out)["images"];
  REQUIRE(predictions.size() == 2);
  CHECK(predictions[1]["image"] == (dir / "photos" / "rocket.png").string());
  // One unreadable sample: reported on one line, the other still predicted, exit code 1.
  std::ofstream(dir / "photos" / "broken.png", std::ios::binary) << "\x89PNG broken";
  r = run("predict " + q(dir / "photos") + kModel + " --topk 1");
  CHECK(r.code == 1);
  CHECK(r.err.find("broken.png") != std::string::npos);
  CHECK(r.err.find("1 of 3 samples failed") != std::string::npos);
}

TEST_CASE("report killed with SIGKILL at random moments resumes to the uninterrupted run's files, byte for byte") {
  const fs::path dir = scratch_dir("sigkill");
  std::string many;  // 18 samples: long enough that kills land before, during and after the loop
  for (int i = 0; i < 3; ++i) many += inputs();
  const std::string settings = kModel + " --topk 2 --patches 2 --maps";
  const CliResult whole = run("report" + many + settings + " -o " + q(dir / "whole"));
  REQUIRE(whole.code == 0);
  std::mt19937 random(20261128);
  std::uniform_real_distribution<double> moment(0.05, 2.5);
  int killed = 0;
  for (int attempt = 0; attempt < 12; ++attempt) {
    char seconds[16];
    std::snprintf(seconds, sizeof seconds, "%.2f", moment(random));
    const CliResult r = run_bagnet(std::string("report") + many + settings + " -o " + q(dir / "killed"),
                                   scratch_folder("report-cli"), {}, std::string("timeout -s KILL ") + seconds + " ");
    killed += r.code != 0 ? 1 : 0;
  }
  CHECK(killed >= 1);  // on a very fast machine every run may finish; then the last one simply resumes
  const CliResult last = run("report" + many + settings + " -o " + q(dir / "killed"));
  REQUIRE_MESSAGE(last.code == 0, last.err);
  CHECK(slurp_file(dir / "killed" / "reports.jsonl") == slurp_file(dir / "whole" / "reports.jsonl"));
  CHECK(slurp_file(dir / "killed" / "summary.json") == slurp_file(dir / "whole" / "summary.json"));
  for (const auto& entry : fs::directory_iterator(dir / "killed" / "maps"))  // no temporary file left behind as a map
    CHECK(entry.path().extension() == ".npz");
}

TEST_CASE("without a terminal, progress is a plain line now and then with rate and time left") {
  const fs::path dir = scratch_dir("progress");
  const CliResult r = run_bagnet("report" + inputs() + kModel + " --topk 1 --patches 1 -o " + q(dir / "out"),
                                 scratch_folder("report-cli"), {}, "BAGNET_PROGRESS_SECONDS=0.000001 ");
  REQUIRE(r.code == 0);
  CHECK(r.err.find("report: 6/6 (100%)") != std::string::npos);
  CHECK(r.err.find("/s, ") != std::string::npos);
  CHECK(r.err.find(" left") != std::string::npos);
  CHECK(r.err.find('\r') == std::string::npos);  // no terminal control characters in a log
}

TEST_CASE("a file name that is not UTF-8: predict and report carry it losslessly in JSON, resume finds it") {
  const fs::path dir = scratch_dir("latin1");
  fs::create_directories(dir / "photos");
  const fs::path odd = dir / "photos" / "caf\xe9.png";  // Latin-1 e-acute: not UTF-8
  fs::copy_file(official("images/rocket-160x208.png"), odd);
  CliResult r = run("predict " + q(odd) + kModel + " --topk 1 --json");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const auto predicted = nlohmann::json::parse(r.out);
  CHECK(predicted["images"][0]["image"] == bagnet::json_path(odd.string()));
  CHECK(bagnet::path_from_json(predicted["images"][0]["image"].get<std::string>()) == odd.string());
  r = run("predict " + q(odd) + kModel + " --topk 1");
  CHECK(r.code == 0);
  CHECK(r.out.find(odd.string()) != std::string::npos);  // text output prints the name as it is
  const std::string report = "report " + q(dir / "photos") + kModel + " --topk 1 --patches 1 --html -o " + q(dir / "out");
  r = run(report);
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const auto line = nlohmann::json::parse(slurp_file(dir / "out" / "reports.jsonl"));
  CHECK(line["image"]["source"] == bagnet::json_path(odd.string()));
  r = run(report);  // resumes: the recorded (escaped) source is recognised as this input
  CHECK(r.code == 0);
  CHECK(r.err.find("1 from an earlier run") != std::string::npos);
}

TEST_CASE("report: folders named after model classes are labelled by name, not by folder order") {
  const fs::path dir = scratch_dir("named");
  fs::create_directories(dir / "data" / "tabby");
  fs::create_directories(dir / "data" / "goldfish");
  fs::copy_file(official("images/chelsea-224x224.png"), dir / "data" / "tabby" / "chelsea.png");
  fs::copy_file(official("images/rocket-160x208.png"), dir / "data" / "goldfish" / "rocket.png");
  const CliResult r = run("report " + q(dir / "data") + kModel + " --topk 1 --patches 1 -o " + q(dir / "out"));
  REQUIRE(r.code == 0);
  std::istringstream lines(slurp_file(dir / "out" / "reports.jsonl"));
  std::string line;
  int64_t seen = 0;
  while (std::getline(lines, line)) {
    const auto report = nlohmann::json::parse(line);
    const bool cat = report["image"]["source"].get<std::string>().find("chelsea") != std::string::npos;
    CHECK(report["decision"]["true_class"] == (cat ? 281 : 1));  // ImageNet: 1 goldfish, 281 tabby
    ++seen;
  }
  CHECK(seen == 2);
  // Only some folder names are classes of the model: refused, naming the folder.
  fs::create_directories(dir / "data" / "not-a-class");
  fs::copy_file(official("images/coffee-224x224.png"), dir / "data" / "not-a-class" / "coffee.png");
  const CliResult bad = run("report " + q(dir / "data") + kModel + " -o " + q(dir / "out2"));
  CHECK(bad.code == 3);
  CHECK(bad.err.find("not-a-class") != std::string::npos);
}
