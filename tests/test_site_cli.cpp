// The evidence browser through the real binary: `report --html` writes raw maps that reproduce the
// report's numbers and a site whose data agree with the reports; `browse` rebuilds it atomically
// and refuses what is not a report of this version; `merge --html` gives the unsharded site's data.
// (Its behaviour in a real browser: tests/browser/site_test.py.)
#include "cli_util.h"
#include "scratch.h"
#include "json_schema.h"
#include "test_util.h"

#include <bagnet/npy.h>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

using namespace bagnet::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path scratch_dir(const std::string& name) { return fresh_scratch_folder("site-cli", name); }

CliResult run(const std::string& args) { return run_bagnet(args, scratch_folder("site-cli")); }

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// The 1000-class BagNet-9 test weights on small inputs: fast, and nearly every sample a mistake.
const std::string kModel = " --weights '" + fixture("bagnet9-s9.pth.tar") + "' --resize 72 --crop 64 --threads " +
                           std::to_string(test_threads(2));

// A labelled image folder: class folders named after ImageNet classes, photos of several sizes.
fs::path make_dataset(const fs::path& dir) {
  const std::map<std::string, std::vector<std::string>> classes = {
      {"tabby", {"chelsea-224x224.png", "rocket-160x208.png"}},
      {"goldfish", {"coffee-224x224.png", "chelsea-224x224.png"}},
      {"espresso", {"coffee-224x224.png", "rocket-160x208.png", "chelsea-224x224.png"}}};
  for (const auto& [name, files] : classes) {
    fs::create_directories(dir / "data" / name);
    int i = 0;
    for (const auto& f : files) fs::copy_file(official("images/" + f), dir / "data" / name / (std::to_string(i++) + "-" + f));
  }
  return dir / "data";
}

std::vector<json> read_lines(const fs::path& path) {
  std::istringstream lines(slurp_file(path));
  std::vector<json> out;
  for (std::string line; std::getline(lines, line);) out.push_back(json::parse(line));
  return out;
}

// The JSON argument of a data script "bagnetSite.NAME(...);" (or "bagnetSite.detail(K, ...);").
json script_data(const fs::path& path) {
  const std::string text = slurp_file(path);
  size_t open = text.find('(');
  REQUIRE(open != std::string::npos);
  if (text.compare(0, 17, "bagnetSite.detail") == 0) open = text.find(',', open);
  const size_t close = text.rfind(");");
  REQUIRE(close != std::string::npos);
  return json::parse(text.substr(open + 1, close - open - 1));
}

// The generation folder index.html points at; every local file it names exists.
std::string live_generation(const fs::path& dir) {
  const std::string page = slurp_file(dir / "index.html");
  std::smatch m;
  REQUIRE(std::regex_search(page, m, std::regex("(site-[0-9]+)/app\\.js")));
  const std::regex ref("(?:src|href)=\"([^\"#:]+)\"");
  int refs = 0;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), ref); it != std::sregex_iterator(); ++it, ++refs)
    CHECK_MESSAGE(fs::exists(dir / (*it)[1].str()), "index.html names a missing file: " << (*it)[1].str());
  CHECK(refs >= 4);
  return m[1].str();
}

// The PNG inside a data: URL.
std::string png_of_data_url(const std::string& url) {
  const std::string prefix = "data:image/png;base64,";
  REQUIRE(url.compare(0, prefix.size(), prefix) == 0);
  const std::string digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (size_t i = prefix.size(); i < url.size() && url[i] != '='; ++i) {
    const size_t v = digits.find(url[i]);
    REQUIRE(v != std::string::npos);
    bits = (bits << 6) | uint32_t(v);
    if ((count += 6) >= 8) out += char((bits >> (count -= 8)) & 0xff);
  }
  return out;
}

std::pair<int, int> png_size(const std::string& bytes) {
  REQUIRE(bytes.size() > 24);
  REQUIRE(bytes.compare(1, 3, "PNG") == 0);
  auto be = [&](size_t at) {
    return (uint8_t(bytes[at]) << 24) | (uint8_t(bytes[at + 1]) << 16) | (uint8_t(bytes[at + 2]) << 8) | uint8_t(bytes[at + 3]);
  };
  return {static_cast<int>(be(20)), static_cast<int>(be(16))};  // height, width
}

const json* find_class(const json& report, int64_t cls) {
  for (const auto& c : report["classes"])
    if (c["class"] == cls) return &c;
  return nullptr;
}

}  // namespace

TEST_CASE("report --html: raw maps reproduce the report, the site's data agree with it") {
  const fs::path dir = scratch_dir("html");
  const fs::path data = make_dataset(dir), out = dir / "out";
  const CliResult r = run("report " + q(data) + kModel + " --topk 3 --patches 2 --html --cmap puor_r -o " + q(out));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.err.find("index.html") != std::string::npos);
  const auto reports = read_lines(out / "reports.jsonl");
  const json summary = json::parse(slurp_file(out / "summary.json"));
  REQUIRE(reports.size() == 7);

  std::ifstream schema_file(std::string(BAGNET_SOURCE_DIR) + "/docs/report-schema.json");
  const SchemaValidator schema(json::parse(schema_file));
  for (const auto& report : reports) {
    for (const auto& e : schema.validate(report)) FAIL_CHECK(e);
    const json& maps = report["maps"];
    REQUIRE(maps.is_object());
    CHECK(maps["dense"] == false);
    CHECK(maps["stride"] == report["model"]["stride"]);
    CHECK(maps["size"] == report["image"]["map_size"]);
    std::map<std::string, torch::Tensor> arrays;
    for (auto& [name, t] : bagnet::load_npz((out / maps["file"].get<std::string>()).string())) arrays[name] = t;
    REQUIRE(arrays.size() == report["classes"].size());
    for (const auto& c : report["classes"]) {
      const torch::Tensor& m = arrays.at("class_" + std::to_string(c["class"].get<int64_t>()));
      CHECK(m.sizes() == torch::IntArrayRef{maps["size"][0].get<int64_t>(), maps["size"][1].get<int64_t>()});
      // The report's total evidence is the double-accumulated mean of these very float32 values.
      const double mean = m.to(torch::kDouble).mean().item<double>(), total = c["total_evidence"].get<double>();
      CHECK(std::abs(mean - total) <= 1e-12 * std::max(1.0, std::abs(total)));
    }
    const std::string stem = maps["file"].get<std::string>().substr(5, 6);
    CHECK(fs::exists(out / "images" / (stem + ".jpg")));  // photos over 128 px are stored as JPEG
  }

  const std::string generation = live_generation(out);
  CHECK(generation == "site-1");
  const json list = script_data(out / generation / "data/list.js");
  const json overview = script_data(out / generation / "data/overview.js");
  REQUIRE(list["n"] == reports.size());
  int64_t errors = 0;
  for (size_t i = 0; i < reports.size(); ++i) {
    const json& d = reports[i]["decision"];
    CHECK(list["index"][i] == reports[i]["image"]["index"]);
    CHECK(list["true"][i] == d["true_class"]);
    CHECK(list["pred"][i] == d["predicted"]);
    errors += d["correct"].get<bool>() ? 0 : 1;
    CHECK(fs::exists(out / overview["images"]["thumbs"].get<std::string>() / list["thumb"][i].get<std::string>()));
    CHECK(fs::exists(out / overview["images"]["dir"].get<std::string>() / list["image"][i].get<std::string>()));
  }
  CHECK(overview["run"]["errors"] == errors);
  CHECK(overview["run"]["labelled"] == summary["labelled"]);
  CHECK(overview["maps"]["colormap"] == "puor_r");
  CHECK(overview["classes"].size() == 1000);
  // 1000 classes: the matrix shows only classes the run met (true or predicted; at most 40), and
  // the names of all 1000 come from the model (summary.json), not only those the reports mention.
  std::set<int64_t> met;
  for (const auto& report : reports) met.insert({report["decision"]["true_class"].get<int64_t>(),
                                                 report["decision"]["predicted"].get<int64_t>()});
  CHECK(overview["confusion"]["complete"] == false);
  CHECK(overview["confusion"]["classes"] == std::vector<int64_t>(met.begin(), met.end()));
  CHECK(overview["classes"][0]["name"] == "tench");
  CHECK(overview["classes"][0]["name"] == summary["class_names"][0]);
  int64_t pair_total = 0;
  for (const auto& p : overview["pairs"]) pair_total += p["count"].get<int64_t>();
  CHECK(pair_total == errors);
  CHECK(overview["atlas"]["pairs"].size() == std::min<size_t>(12, overview["pairs"].size()));

  const json chunk = script_data(out / generation / "data/detail/0.js");
  for (const auto& report : reports) {
    const std::string key = report["image"]["index"].dump();
    REQUIRE(chunk.contains(key));
    const json& view = chunk[key]["view"];
    const json& d = report["decision"];
    std::map<std::string, json> by_role;
    for (const auto& m : view["maps"]) {
      by_role[m["role"].get<std::string>()] = m;
      const auto [h, w] = png_size(png_of_data_url(m["file"].get<std::string>()));
      CHECK(h == view["layout"]["rows"].get<int>());
      CHECK(w == view["layout"]["cols"].get<int>());
      CHECK(m["values"].size() == view["layout"]["rows"].get<size_t>() * view["layout"]["cols"].get<size_t>());
    }
    REQUIRE(by_role.count("predicted"));
    CHECK(by_role["predicted"]["class"] == d["predicted"]);
    if (d["correct"].get<bool>()) continue;
    REQUIRE(by_role.count("true"));
    REQUIRE(by_role.count("margin"));
    // margin = predicted - true, cell by cell (values are rounded to 4 significant digits).
    const json &p = by_role["predicted"]["values"], &t = by_role["true"]["values"], &m = by_role["margin"]["values"];
    for (size_t i = 0; i < m.size(); ++i) {
      const double want = p[i].get<double>() - t[i].get<double>();
      CHECK(std::abs(m[i].get<double>() - want) <= 1e-3 * (std::abs(p[i].get<double>()) + std::abs(t[i].get<double>())) + 1e-9);
    }
    CHECK(find_class(report, d["true_class"].get<int64_t>()) != nullptr);
  }
}

TEST_CASE("browse rebuilds atomically; what is not a report of this version is refused") {
  const fs::path dir = scratch_dir("browse");
  const fs::path data = make_dataset(dir), out = dir / "out";
  REQUIRE(run("report " + q(data) + kModel + " --topk 2 --patches 1 --maps -o " + q(out)).code == 0);
  CHECK(!fs::exists(out / "index.html"));  // --maps alone writes no site

  CliResult r = run("browse " + q(out));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(live_generation(out) == "site-1");
  r = run("browse " + q(out) + " --title 'Run <7>'");
  REQUIRE(r.code == 0);
  CHECK(live_generation(out) == "site-2");
  CHECK(!fs::exists(out / "site-1"));
  CHECK(slurp_file(out / "index.html").find("Run &lt;7&gt;") != std::string::npos);

  // A sample's raw maps gone: refused with one line naming them; the live site stays whole.
  const auto reports = read_lines(out / "reports.jsonl");
  const fs::path npz = out / reports.back()["maps"]["file"].get<std::string>();
  fs::rename(npz, dir / "moved.npz");
  r = run("browse " + q(out));
  CHECK(r.code == 3);
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(r.err.find(npz.filename().string()) != std::string::npos);
  CHECK(live_generation(out) == "site-2");
  fs::rename(dir / "moved.npz", npz);

  // Not a report folder; a report of schema version 1; a report written without maps.
  r = run("browse " + q(data));
  CHECK(r.code == 3);
  CHECK(r.err.find("not a report folder") != std::string::npos);
  const fs::path old = dir / "old";
  fs::create_directories(old);
  fs::copy_file(out / "summary.json", old / "summary.json");
  {
    std::string text = slurp_file(out / "reports.jsonl");
    text = std::regex_replace(text, std::regex("\"version\":2"), "\"version\":1");
    std::ofstream(old / "reports.jsonl", std::ios::binary) << text;
  }
  r = run("browse " + q(old));
  CHECK(r.code == 3);
  CHECK(r.err.find("version 1") != std::string::npos);
  // Hostile numbers and missing fields (a folder from a stranger): one line each, exit 3, never the
  // JSON library's exception or an out-of-range conversion (UBSan would flag that).
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"reports.jsonl", "\"true_class\":[0-9]+"}, {"reports.jsonl", "\"probability\":[-0-9.e]+"},
      {"reports.jsonl", "\"predictions\":"}, {"summary.json", "\"reported\": [0-9]+"}};
  const std::vector<std::string> replacements = {"\"true_class\":1e300", "\"probability\":\"high\"", "\"predictionz\":",
                                                 "\"reported\": 9.9e300"};
  for (size_t e = 0; e < edits.size(); ++e) {
    const fs::path hostile = dir / ("hostile-" + std::to_string(e));
    fs::remove_all(hostile);
    fs::copy(out, hostile, fs::copy_options::recursive);
    const fs::path file = hostile / edits[e].first;
    const std::string text = std::regex_replace(slurp_file(file), std::regex(edits[e].second), replacements[e]);
    REQUIRE(text != slurp_file(file));
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
    r = run("browse " + q(hostile));
    CHECK_MESSAGE(r.code == 3, edits[e].second << ": " << r.err);
    CHECK(r.err.rfind("error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  const fs::path plain = dir / "plain";
  REQUIRE(run("report " + q(data) + kModel + " --topk 2 --patches 1 -o " + q(plain)).code == 0);
  r = run("browse " + q(plain));
  CHECK(r.code == 3);
  CHECK(r.err.find("--maps") != std::string::npos);
  CHECK(!fs::exists(plain / "index.html"));

  // Command-line mistakes.
  CHECK(run("report " + q(data) + kModel + " --html").code == 2);
  CHECK(run("report " + q(data) + kModel + " -o " + q(dir / "x") + " --stride 1").code == 2);
  r = run("browse " + q(out) + " --cmap viridis");
  CHECK(r.code == 2);
  CHECK(r.err.find("diverging") != std::string::npos);
  CHECK(run("browse").code == 2);
  // Resuming with maps into a folder written without them would leave samples without maps.
  r = run("report " + q(data) + kModel + " --topk 2 --patches 1 --html -o " + q(plain));
  CHECK(r.code == 2);
  CHECK(r.err.find("raw maps") != std::string::npos);
}

TEST_CASE("merge --html gives the unsharded site's data; --stride 1 stores dense maps") {
  const fs::path dir = scratch_dir("merge");
  const fs::path data = make_dataset(dir);
  const std::string common = kModel + " --topk 2 --patches 1 --margin-patches 2";
  REQUIRE(run("report " + q(data) + common + " --html -o " + q(dir / "whole")).code == 0);
  for (int s = 0; s < 2; ++s)
    REQUIRE(run("report " + q(data) + common + " --maps --shard " + std::to_string(s) + "/2 -o " +
                q(dir / ("shard" + std::to_string(s)))).code == 0);
  const CliResult r = run("merge " + q(dir / "shard0") + " " + q(dir / "shard1") + " --html -o " + q(dir / "merged"));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(slurp_file(dir / "whole" / "reports.jsonl") == slurp_file(dir / "merged" / "reports.jsonl"));
  const std::string g1 = live_generation(dir / "whole"), g2 = live_generation(dir / "merged");
  CHECK(slurp_file(dir / "whole" / g1 / "data/list.js") == slurp_file(dir / "merged" / g2 / "data/list.js"));
  CHECK(slurp_file(dir / "whole" / g1 / "data/detail/0.js") == slurp_file(dir / "merged" / g2 / "data/detail/0.js"));
  fs::remove_all(dir / "shard0");  // the merged folder stands alone
  CHECK(run("browse " + q(dir / "merged")).code == 0);

  REQUIRE(run("report " + q(data) + common + " --maps --stride 1 -o " + q(dir / "dense")).code == 0);
  const auto reports = read_lines(dir / "dense" / "reports.jsonl");
  for (const auto& report : reports) {
    CHECK(report["maps"]["dense"] == true);
    CHECK(report["maps"]["stride"] == 1);
    CHECK(report["maps"]["size"] == report["image"]["input_size"]);
  }
  CHECK(run("report " + q(data) + common + " --maps --stride 3 -o " + q(dir / "bad")).code == 2);
}
