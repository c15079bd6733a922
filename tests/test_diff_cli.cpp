// The real binary's `bagnet diff` on Fashion-MNIST: the bundled BagNet against a copy of itself
// with two classes' classifier rows swapped (so exactly the decisions between those classes change,
// known in advance), a model of another q (figures, page), and bad input.
#include "cli_util.h"
#include "scratch.h"

#include <bagnet/model.h>
#include <bagnet/model_file.h>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using bagnet::test::CliResult;
using bagnet::test::slurp_file;

namespace {

#ifdef BAGNET_FASHION_MNIST_DIR
const std::string kData = std::string(BAGNET_FASHION_MNIST_DIR) + "/t10k-images-idx3-ubyte.gz";
#else
const std::string kData;
#endif
const fs::path kBundled = BAGNET_BUNDLED_MODEL;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

CliResult run(const std::string& args) { return bagnet::test::run_bagnet(args, bagnet::test::scratch_folder("diff-cli")); }

bool have_data() { return !kData.empty() && fs::exists(kData) && fs::exists(kBundled); }

// The bundled model with classifier rows `i` and `j` swapped, or (arch given) a random model of
// that architecture with the bundled model's classes and preprocessing.
fs::path variant(const std::string& name, int64_t i, int64_t j, const std::string& arch = "") {
  bagnet::LoadedModel m = bagnet::load_model(kBundled.string());
  bagnet::ModelMeta meta = *m.meta;
  bagnet::BagNet net = m.net;
  if (!arch.empty()) {
    torch::manual_seed(1);
    meta.arch = bagnet::parse_arch(arch);
    net = bagnet::BagNet(meta.arch);
  }
  torch::NoGradGuard no_grad;
  for (const char* key : {"fc.weight", "fc.bias"}) {
    torch::Tensor p = net->named_parameters()[key];
    const torch::Tensor row = p[i].clone();
    p[i].copy_(p[j]);
    p[j].copy_(row);
  }
  const fs::path path = bagnet::test::scratch_path("diff-cli", name);
  bagnet::save_model_file(path.string(), bagnet::state_dict_of(net), meta);
  return path;
}

std::vector<nlohmann::json> read_lines(const fs::path& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(slurp_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST_CASE("diff: swapping t-shirt and shirt changes exactly the decisions between them, margins negated") {
  if (!have_data()) {
    MESSAGE("skipped: Fashion-MNIST or the bundled model missing");
    return;
  }
  const fs::path swapped = variant("swapped.pt", 0, 6);
  const fs::path out = bagnet::test::scratch_path("diff-cli", "swap");
  const CliResult r = run("diff " + q(kData) + " --weights " + q(swapped) + " --against " + q(kBundled) +
                          " --limit 300 --seed 4 --threads 2 --figures 5 --html --json -o " + q(out));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["schema"] == "bagnet-lens/diff");
  CHECK(j["images"] == 300);
  const auto& d = j["decisions"];
  const int64_t changed = d["fixed"].get<int64_t>() + d["introduced"].get<int64_t>() + d["other_mistake"].get<int64_t>();
  CHECK(changed + d["same"].get<int64_t>() == 300);
  CHECK(d["changed_unlabelled"] == 0);
  CHECK(changed > 10);  // t-shirts and shirts are a fifth of the data
  CHECK(j["settings"]["map_stride"] == 1);
  const auto lines = read_lines(out / "changes.jsonl");
  REQUIRE(static_cast<int64_t>(lines.size()) == changed);
  int64_t figures = 0, previous = -1;
  for (const auto& c : lines) {
    const int64_t before = c["against"]["predicted"], after = c["weights"]["predicted"];
    CHECK(((before == 0 && after == 6) || (before == 6 && after == 0)));
    // Negated up to float32 rounding of logits of magnitude <= ~50 (absolute: a margin near 0 has no
    // relative precision).
    CHECK(std::abs(c["weights"]["margin"].get<double>() + c["against"]["margin"].get<double>()) <= 1e-4);
    CHECK(c["index"].get<int64_t>() > previous);  // dataset order
    previous = c["index"];
    const std::string kind = c["change"];
    const int64_t label = c["label"];
    CHECK(kind == (label == after ? "fixed" : label == before ? "introduced" : "other_mistake"));
    CHECK(c["evidence"]["map_rows"] == 28);
    CHECK_FALSE(c["evidence"]["toward_weights"].empty());
    if (c["figure"].is_string()) {
      ++figures;
      CHECK(fs::file_size(out / c["figure"].get<std::string>()) > 1000);
    }
  }
  CHECK(figures == 5);
  CHECK(j["accuracy"]["change"].get<double>() ==
        doctest::Approx(double(d["fixed"].get<int64_t>() - d["introduced"].get<int64_t>()) / 300).epsilon(1e-9));
  for (const auto& m : j["moves"]) {
    CHECK(((m["from"] == 0 && m["to"] == 6) || (m["from"] == 6 && m["to"] == 0)));
  }
  // The page: every changed sample has its card, names escaped, no script.
  const std::string page = slurp_file(out / "index.html");
  for (const auto& c : lines) CHECK(page.find("id=\"s" + std::to_string(c["index"].get<int64_t>()) + "\"") != std::string::npos);
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("Mistakes fixed (" + std::to_string(d["fixed"].get<int64_t>()) + ")") != std::string::npos);
  CHECK(fs::exists(out / "diff.json"));
  CHECK(nlohmann::json::parse(slurp_file(out / "diff.json")) == j);
}

TEST_CASE("diff: a model against itself, and against a model of another q") {
  if (!have_data()) {
    MESSAGE("skipped: Fashion-MNIST or the bundled model missing");
    return;
  }
  const CliResult same = run("diff " + q(kData) + " --against " + q(kBundled) + " --limit 50 --threads 2 --json");
  REQUIRE_MESSAGE(same.code == 0, same.err);
  const auto s = nlohmann::json::parse(same.out);
  CHECK(s["decisions"]["same"] == 50);
  CHECK(s["accuracy"]["weights"] == s["accuracy"]["against"]);
  CHECK(s["mcnemar"]["p_value"] == 1.0);

  const fs::path q17 = variant("q17.pt", 0, 0, "blocks=1-1-1-1,kernel3=1-1-1-1,strides=2-1-1-1,widths=8-8-8-8,stem=8,in=1,classes=10");
  const fs::path out = bagnet::test::scratch_path("diff-cli", "q17");
  const CliResult r = run("diff " + q(kData) + " --weights " + q(q17) + " --against " + q(kBundled) + " --limit 20 --threads 2 -o " + q(out));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("20 images (20 labelled)") != std::string::npos);
  CHECK(r.out.find("McNemar") != std::string::npos);
  const auto j = nlohmann::json::parse(slurp_file(out / "diff.json"));
  CHECK(j["weights"]["receptive_field"] == 17);
  CHECK(j["against"]["receptive_field"] == 9);
  for (const auto& c : read_lines(out / "changes.jsonl"))
    for (const auto& cell : c["evidence"]["toward_weights"]) {
      const auto& b = cell["box_input"];  // 17 x 17 centred on the cell, clipped to the 28 x 28 input
      CHECK(b[0].get<int>() == std::max(0, cell["cell"][0].get<int>() - 8));
      CHECK(b[2].get<int>() == std::min(28, cell["cell"][0].get<int>() + 9));
    }
  CHECK_FALSE(fs::exists(out / "index.html"));
}

TEST_CASE("diff: bad input gets one clear line and a non-zero exit") {
  const fs::path dir = bagnet::test::scratch_folder("diff-cli");
  const std::string data = have_data() ? q(kData) : q(kBundled);
  const CliResult missing = run("diff " + data);
  CHECK(missing.code == 2);
  CHECK(missing.err.find("--against") != std::string::npos);
  // A TorchScript file is never read as --against (nor as --weights).
  torch::jit::Module m("net");
  m.define("def forward(self, x):\n    return x\n");
  const fs::path ts = dir / "script.pt";
  m.save(ts.string());
  const CliResult script = run("diff " + data + " --against " + q(ts));
  CHECK(script.code == 3);
  CHECK(script.err.find("TorchScript") != std::string::npos);
  CHECK(std::count(script.err.begin(), script.err.end(), '\n') == 1);
  if (!have_data()) return;
  // Another class count.
  bagnet::LoadedModel bundled = bagnet::load_model(kBundled.string());
  bagnet::ModelMeta meta = *bundled.meta;
  meta.arch.num_classes = 5;
  meta.class_names.resize(5);
  torch::manual_seed(2);
  bagnet::BagNet five(meta.arch);
  const fs::path five_path = dir / "five.pt";
  bagnet::save_model_file(five_path.string(), bagnet::state_dict_of(five), meta);
  const CliResult classes = run("diff " + q(kData) + " --against " + q(five_path) + " --limit 5");
  CHECK(classes.code == 3);
  CHECK(classes.err.find("10 and 5 classes") != std::string::npos);
  const CliResult stride = run("diff " + q(kData) + " --against " + q(kBundled) + " --map-stride 2 --limit 5");
  CHECK(stride.code == 2);
  CHECK(stride.err.find("not a dense map stride of both models") != std::string::npos);
  const CliResult html = run("diff " + q(kData) + " --against " + q(kBundled) + " --html");
  CHECK(html.code == 2);
  CHECK(html.err.find("--html needs -o") != std::string::npos);
}
