// The real binary's `bagnet compare`: the bundled Fashion-MNIST BagNet against the shared
// TorchScript CNN on a seeded subset of the test set, and the bad inputs of the issue: a TorchScript
// file as --weights, a wrong class count, a model that throws, bad flags.
#include "cli_util.h"
#include "scratch.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;
using bagnet::test::CliResult;
using bagnet::test::slurp_file;

namespace {

const fs::path kCnn = fs::path(BAGNET_TORCHSCRIPT_DIR) / "fmnist-cnn.pt";
#ifdef BAGNET_FASHION_MNIST_DIR
const std::string kData = std::string(BAGNET_FASHION_MNIST_DIR) + "/t10k-images-idx3-ubyte.gz";
#else
const std::string kData;
#endif

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

CliResult run(const std::string& args) { return bagnet::test::run_bagnet(args, bagnet::test::scratch_folder("compare-cli")); }

// A TorchScript classifier of 28 x 28 grey images defined here: `body` is its forward method.
fs::path torchscript(const std::string& name, const std::string& body) {
  torch::jit::Module m(name);
  m.define("def forward(self, x):\n" + body);
  const fs::path path = bagnet::test::scratch_path("compare-cli", name + ".pt");
  m.save(path.string());
  return path;
}

bool have_data() { return !kData.empty() && fs::exists(kData) && fs::exists(kCnn); }

}  // namespace

TEST_CASE("compare: the bundled BagNet against the shared CNN, reproducible, plots written") {
  if (!have_data()) {
    MESSAGE("skipped: Fashion-MNIST or " << kCnn.string() << " missing");
    return;
  }
  const fs::path out = bagnet::test::scratch_path("compare-cli", "out");
  const std::string args = q(kData) + " --model " + q(kCnn) + " --limit 30 --patch-counts 1,2,4 --steps 6 --pairs 2 --json --threads 2";
  const CliResult r = run("compare " + args + " -o " + q(out));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["schema"] == "bagnet-lens/compare");
  CHECK(j["images"] == 30);
  CHECK(j["labelled"] == 30);
  const auto& e = j["error_agreement"];
  CHECK(e["both_right"].get<int>() + e["only_bagnet_wrong"].get<int>() + e["only_other_wrong"].get<int>() +
            e["both_wrong"].get<int>() == 30);
  // The shared CNN reaches 0.8879 on all 10,000; 30 images cannot stray far below.
  CHECK(j["accuracy"]["other"].get<double>() >= 0.6);
  CHECK(j["other"]["kind"] == "torchscript");
  const auto& s = j["feature_sensitivity"];
  REQUIRE(s["k"].size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(s["images"][i].get<int>() <= 30);
    // The most informative patches carry at least the mean evidence: leaving the bag lowers it.
    if (s["images"][i].get<int>() > 0) CHECK(s["bagnet_bag_drop"][i].get<double>() >= 0);
  }
  CHECK(j["interactions"]["pairs"].get<int>() > 0);
  CHECK(j["interactions"]["bagnet"]["max_abs_deviation"].get<double>() < 1e-3);
  for (const char* curve : {"deletion", "insertion"}) {
    CHECK(j[curve]["fractions"].size() == 7);
    for (const char* key : {"bagnet_auc", "other_auc", "random_auc"}) {
      CHECK(j[curve][key].get<double>() >= 0);
      CHECK(j[curve][key].get<double>() <= 1);
    }
  }
  // Files: the same document, one line per image, four pictures.
  CHECK(nlohmann::json::parse(slurp_file(out / "compare.json")) == j);
  const std::string lines = slurp_file(out / "images.jsonl");
  CHECK(std::count(lines.begin(), lines.end(), '\n') == 30);
  for (const char* png : {"sensitivity.png", "deletion.png", "insertion.png", "errors.png"}) {
    CHECK(fs::file_size(out / png) > 1000);
    CHECK(slurp_file(out / png).substr(1, 3) == "PNG");
  }
  // The same seed gives the same numbers; another seed another subset.
  const CliResult again = run("compare " + args);
  REQUIRE(again.code == 0);
  CHECK(nlohmann::json::parse(again.out) == j);
  const CliResult other_seed = run("compare " + args + " --seed 1");
  REQUIRE(other_seed.code == 0);
  CHECK(nlohmann::json::parse(other_seed.out)["feature_sensitivity"] != j["feature_sensitivity"]);
  // The text summary.
  const CliResult text = run("compare " + q(kData) + " --model " + q(kCnn) + " --limit 5 --patch-counts 1 --steps 2");
  REQUIRE(text.code == 0);
  CHECK(text.out.find("only BagNet wrong") != std::string::npos);
  CHECK(text.out.find("deletion AUC") != std::string::npos);
}

TEST_CASE("compare: bad models and flags get one clear line") {
  if (!have_data()) {
    MESSAGE("skipped: Fashion-MNIST or " << kCnn.string() << " missing");
    return;
  }
  auto one_error = [](const CliResult& r, int code, const std::string& text) {
    CHECK_MESSAGE(r.code == code, r.err);
    CHECK_MESSAGE(r.err.find(text) != std::string::npos, r.err);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.rfind("error: ", 0) == 0);
  };
  const std::string data = q(kData) + " --limit 3";
  // A TorchScript file is a program: never read as weights, by compare or any other command.
  one_error(run("compare " + data + " --weights " + q(kCnn) + " --model " + q(kCnn)), 3, "a TorchScript file");
  one_error(run("predict " + q(kData) + " --weights " + q(kCnn)), 3, "a TorchScript file");
  const fs::path seven = torchscript("seven", "    return torch.zeros(x.size(0), 7)\n");
  one_error(run("compare " + data + " --model " + q(seven)), 3, "its class count differs from the BagNet's");
  const fs::path throws = torchscript("throws", "    return torch.matmul(torch.flatten(x, 1), torch.zeros(3, 10))\n");  // fails: shapes
  one_error(run("compare " + data + " --model " + q(throws)), 4, "the model failed");
  one_error(run("compare " + data + " --model " + q(fs::path("/nonexistent/model.pt"))), 3, "model.pt");
  one_error(run("compare " + data), 2, "--model");
  one_error(run("compare " + data + " --model " + q(kCnn) + " --model-input rgb"), 2, "--model-input");
  one_error(run("compare " + data + " --model " + q(kCnn) + " --patch-counts 0,2"), 2, "--patch-counts");
  one_error(run("compare " + data + " --model " + q(kCnn) + " --model-channels 2"), 2, "--model-channels");
  one_error(run("compare " + data + " --model " + q(kCnn) + " --fill noise"), 2, "--fill");
}
