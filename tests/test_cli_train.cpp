// Smoke tests of `bagnet train` / `bagnet eval` on a tiny IDX dataset built here, of the bundled
// default model (used when --weights is not given), and of error handling.
#include "cli_util.h"

#include "scratch.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sys/wait.h>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using bagnet::test::slurp_file;
using Result = bagnet::test::CliResult;

fs::path dir() { return bagnet::test::scratch_folder("cli-train"); }

std::string slurp(const fs::path& path) { return slurp_file(path); }

Result run(const std::string& args) { return bagnet::test::run_bagnet(args, dir()); }

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
}

// 16x16 grey images of three textures (rows, columns, dots) with seeded noise, as IDX files.
void write_textures(const fs::path& folder, const std::string& prefix, int count, unsigned seed) {
  std::mt19937 rng(seed);
  std::string images = std::string("\0\0\x08\x03", 4) + be32(count) + be32(16) + be32(16);
  std::string labels = std::string("\0\0\x08\x01", 4) + be32(count);
  for (int i = 0; i < count; ++i) {
    const int c = i % 3;
    labels += char(c);
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x) {
        const bool on = c == 0 ? y % 2 == 0 : c == 1 ? x % 2 == 0 : (x % 2 == 0 && y % 2 == 0);
        images += char(std::min(255, int(on ? 180 : 40) + int(rng() % 60)));
      }
  }
  std::ofstream(folder / (prefix + "-images-idx3-ubyte"), std::ios::binary) << images;
  std::ofstream(folder / (prefix + "-labels-idx1-ubyte"), std::ios::binary) << labels;
}

const std::string kArch = " --arch blocks=1-1,kernel3=1-0,strides=2-1,widths=4-8,stem=8,expansion=2,in=1 --threads 1";

}  // namespace

TEST_CASE("train, resume, eval and predict with a tiny model") {
  const fs::path d = dir();
  write_textures(d, "tex", 60, 1);
  write_textures(d, "val", 30, 2);
  std::ofstream(d / "names.txt") << "rows\ncolumns\ndots\n";
  const std::string data = "'" + (d / "tex-images-idx3-ubyte").string() + "'";
  const std::string val = " --val '" + (d / "val-images-idx3-ubyte").string() + "'";
  const std::string model = (d / "tex.pt").string();
  fs::remove(model);
  fs::remove(model + ".ckpt");

  Result r = run("train " + data + val + kArch + " --labels '" + (d / "names.txt").string() +
                 "' --epochs 4 --batch-size 10 --lr 0.2 --shift 1 --flip --seed 3 --json --out '" + model + "'");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.err.find("epoch 4/4") != std::string::npos);
  const json summary = json::parse(r.out);
  CHECK(summary["receptive_field"] == 5);
  CHECK(summary["stride"] == 2);
  const json& history = summary["training"]["history"];
  REQUIRE(history.size() == 4);
  CHECK(history[3]["train_loss"].get<double>() < history[0]["train_loss"].get<double>());
  CHECK(fs::exists(model + ".ckpt"));

  // --resume of a finished run trains nothing more and writes the same weights.
  r = run("train " + data + val + kArch + " --labels '" + (d / "names.txt").string() +
          "' --epochs 4 --batch-size 10 --lr 0.2 --shift 1 --flip --seed 3 --resume --out '" + model + "'");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.err.find("resuming") != std::string::npos);
  // A different recipe cannot resume the checkpoint.
  r = run("train " + data + val + kArch + " --labels '" + (d / "names.txt").string() +
          "' --epochs 4 --batch-size 10 --lr 0.3 --shift 1 --flip --seed 3 --resume --out '" + model + "'");
  CHECK(r.code == 2);
  CHECK(r.err.find("lr") != std::string::npos);

  r = run("eval '" + (d / "val-images-idx3-ubyte").string() + "' --weights '" + model + "' --json --threads 1");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const json e = json::parse(r.out);
  CHECK(e["examples"] == 30);
  CHECK(e["top1"].get<double>() >= 0.0);
  CHECK(e["top1"].get<double>() <= 1.0);
  CHECK(e["top5"].get<double>() == 1.0);  // three classes
  CHECK(e["classes"] == json({"rows", "columns", "dots"}));
  int64_t total = 0, diagonal = 0;
  for (size_t t = 0; t < 3; ++t)
    for (size_t p = 0; p < 3; ++p) {
      total += e["confusion"][t][p].get<int64_t>();
      if (t == p) diagonal += e["confusion"][t][p].get<int64_t>();
    }
  CHECK(total == 30);
  CHECK(e["misclassified"].size() == size_t(30 - diagonal));
  CHECK(e["top1"].get<double>() == doctest::Approx(diagonal / 30.0));
  // The accuracy seen during training on the same data is the one eval reports.
  CHECK(summary["training"]["final"]["val_top1"].get<double>() == doctest::Approx(e["top1"].get<double>()));
  for (const auto& m : e["misclassified"]) {
    CHECK(m["true"] != m["predicted"]);
    CHECK(m["predicted_logit"].get<double>() >= m["true_logit"].get<double>());
  }

  // Text output, info and predict read classes, sizes and normalisation from the model file.
  r = run("eval '" + (d / "val-images-idx3-ubyte").string() + "' --weights '" + model + "' --threads 1");
  REQUIRE(r.code == 0);
  CHECK(r.out.find("confusion") != std::string::npos);
  r = run("info --weights '" + model + "' --json");
  REQUIRE(r.code == 0);
  const json info = json::parse(r.out);
  CHECK(info["strides"] == json({2, 1}));
  CHECK(info["model"]["classes"] == json({"rows", "columns", "dots"}));
  CHECK(info["model"]["input"]["crop"] == 16);
  cv::Mat img(16, 16, CV_8UC1);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) img.at<uint8_t>(y, x) = y % 2 == 0 ? 200 : 50;
  REQUIRE(cv::imwrite((d / "rows.png").string(), img));
  r = run("predict '" + (d / "rows.png").string() + "' --weights '" + model + "' --json --threads 1");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const json p = json::parse(r.out);
  CHECK(p["images"][0]["input_size"] == json({16, 16}));
  CHECK(p["images"][0]["predictions"][0]["name"].is_string());
}

TEST_CASE("train and eval errors") {
  const fs::path d = dir();
  write_textures(d, "err", 6, 4);
  const std::string data = "'" + (d / "err-images-idx3-ubyte").string() + "'";
  Result r = run("train " + data + kArch);
  CHECK(r.code == 2);
  CHECK(r.err.find("-o FILE") != std::string::npos);
  r = run("train " + data + " --out x.pt");
  CHECK(r.code == 2);
  std::ofstream(d / "bad-images-idx3-ubyte", std::ios::binary) << std::string("\0\0\x08\x03", 4) << be32(5);
  std::ofstream(d / "bad-labels-idx1-ubyte", std::ios::binary) << std::string("\0\0\x08\x01", 4) << be32(5);
  r = run("train '" + (d / "bad-images-idx3-ubyte").string() + "'" + kArch + " --out '" + (d / "bad.pt").string() + "'");
  CHECK(r.code == 3);
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(r.err.find("bad-images-idx3-ubyte") != std::string::npos);
  CHECK(!fs::exists(d / "bad.pt"));
  r = run("train " + data + kArch + " --out '" + (d / "x.pt").string() + "' --resume");
  CHECK(r.code == 3);
  CHECK(r.err.find("no checkpoint") != std::string::npos);
  r = run("eval " + data + " --weights '" + (d / "missing.pt").string() + "'");
  CHECK(r.code == 3);

  // Output paths are checked before any work: a missing folder fails at once, a model file or
  // checkpoint of an earlier run is not replaced without --overwrite.
  r = run("train " + data + kArch + " --epochs 1 -o '" + (d / "no-such-folder" / "m.pt").string() + "'");
  CHECK(r.code == 3);
  CHECK(r.err.find("does not exist") != std::string::npos);
  CHECK(r.err.find("epoch") == std::string::npos);
  const fs::path earlier = d / "earlier.pt";
  fs::remove(earlier.string() + ".ckpt");
  std::ofstream(earlier) << "an earlier run's model";
  r = run("train " + data + kArch + " --epochs 1 --batch-size 3 -o '" + earlier.string() + "'");
  CHECK(r.code == 2);
  CHECK(r.err.find("earlier.pt exists") != std::string::npos);
  CHECK(slurp(earlier) == "an earlier run's model");
  r = run("train " + data + kArch + " --epochs 1 --batch-size 3 --overwrite -o '" + earlier.string() + "'");
  CHECK_MESSAGE(r.code == 0, r.err);
  CHECK(slurp(earlier) != "an earlier run's model");
  fs::remove(earlier);  // the checkpoint alone is also an earlier run
  r = run("train " + data + kArch + " --epochs 1 --batch-size 3 --out '" + earlier.string() + "'");
  CHECK(r.code == 2);
  CHECK(r.err.find("earlier.pt.ckpt exists") != std::string::npos);
}

#ifdef BAGNET_DEFAULT_MODEL_FILE
TEST_CASE("the bundled default model is used without --weights") {
  const fs::path examples = fs::path(BAGNET_SOURCE_DIR) / "assets" / "examples";
  std::vector<std::string> pngs;
  for (const auto& e : fs::directory_iterator(examples))
    if (e.path().extension() == ".png") pngs.push_back(e.path().string());
  std::sort(pngs.begin(), pngs.end());
  REQUIRE(pngs.size() >= 10);
  std::string args = "predict --json --threads 2";
  for (const auto& p : pngs) args += " '" + p + "'";
  const Result r = run(args);
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const json out = json::parse(r.out);
  CHECK(out["weights"].get<std::string>().find(BAGNET_DEFAULT_MODEL_FILE) != std::string::npos);
  REQUIRE(out["images"].size() == pngs.size());
  int right = 0;
  for (const auto& image : out["images"]) {
    // Files are named NNNN_<true class>.png.
    const std::string name = fs::path(image["image"].get<std::string>()).stem().string();
    const std::string truth = name.substr(name.find('_') + 1);
    right += image["predictions"][0]["name"] == truth;
    CHECK(image["map_size"][0].get<int>() >= 10);
  }
  MESSAGE(right << " of " << pngs.size() << " examples classified correctly");
  CHECK(right >= int(pngs.size()) / 2);

  // eval reads datasets by the same rule as report and patches: the examples' CSV names classes
  // (a subset, sorted differently from the model's), matched by name.
  const std::string csv = (examples / "labels.csv").string();
  const Result evaluated = run("eval '" + csv + "' --json --threads 2");
  REQUIRE_MESSAGE(evaluated.code == 0, evaluated.err);
  const json e = json::parse(evaluated.out);
  CHECK(e["examples"].get<size_t>() == pngs.size());
  CHECK(e["top1"].get<double>() == doctest::Approx(double(right) / double(pngs.size())));
}

#ifdef BAGNET_FASHION_MNIST_DIR
TEST_CASE("the default model's Fashion-MNIST test accuracy is the one recorded in it") {
  Result r = run("info --json");
  REQUIRE(r.code == 0);
  const double recorded = json::parse(r.out)["model"]["training"]["final"]["val_top1"].get<double>();
  r = run("eval '" BAGNET_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz' --json --threads 2");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const json e = json::parse(r.out);
  CHECK(e["examples"] == 10000);
  CHECK(e["top1"].get<double>() >= 0.88);
  CHECK(e["top1"].get<double>() == doctest::Approx(recorded).epsilon(0.002));
}
#endif
#endif
