// Smoke tests of the real bagnet binary: help, predictions and evidence maps from the fixture PNGs
// against the official outputs, consistency between predict and evidence, and error handling.
#include <bagnet/model.h>
#include <bagnet/npy.h>

#include "float_error.h"
#include "reference.h"
#include "cli_util.h"
#include "crafted_images.h"
#include "scratch.h"
#include "test_util.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>

using namespace bagnet::test;
namespace fs = std::filesystem;

namespace {

using Result = CliResult;

fs::path scratch_dir() { return scratch_folder("cli"); }

std::string slurp(const fs::path& path) { return slurp_file(path); }

Result run(const std::string& args) { return run_bagnet(args, scratch_dir()); }

std::string image(const std::string& name) { return "'" + official("images/" + name) + "'"; }
std::string weights(const std::string& name) { return " --weights '" + fixture(name) + "'"; }
const std::string kAsStored = " --resize none --crop none --threads " + std::to_string(test_threads(2));

}  // namespace

TEST_CASE("help lists commands and examples") {
  const Result top = run("--help");
  CHECK(top.code == 0);
  const Result version = run("--version");
  CHECK(version.out == "bagnet-lens " BAGNET_PROJECT_VERSION "\n");  // CMake's project() is the one source
  CHECK(top.out.find("Exit codes") != std::string::npos);
  for (const std::string command : {"info", "predict", "evidence", "heatmap"}) {
    const Result r = run(command + " --help");
    CHECK(r.code == 0);
    CHECK(r.out.find("Examples:") != std::string::npos);
    CHECK(r.out.find("--weights") != std::string::npos);
  }
}

TEST_CASE("predict from the PNGs matches the official logits for every model") {
  for (const std::string model : {"bagnet9-s9", "bagnet17-s17", "bagnet33-s33"}) {
    CAPTURE(model);
    const auto reference = read_reference(official("reference-" + model + ".pt"));
    const Result r = run("predict " + image("chelsea-224x224.png") + " " + image("coffee-224x224.png") + " " +
                         image("rocket-160x208.png") + weights(model + ".pth.tar") + kAsStored + " --topk 5 --json");
    REQUIRE(r.code == 0);
    const auto json = nlohmann::json::parse(r.out);
    REQUIRE(json["images"].size() == 3);
    const std::vector<std::pair<std::string, int>> order{{"224x224", 0}, {"224x224", 1}, {"160x208", 0}};
    for (size_t i = 0; i < 3; ++i) {
      const torch::Tensor official_logits = reference.at("logits_" + order[i].first)[order[i].second];
      const auto top = std::get<1>(official_logits.topk(5));
      const double scale = official_logits.abs().max().item<double>();
      const auto& predictions = json["images"][i]["predictions"];
      REQUIRE(predictions.size() == 5);
      for (int64_t k = 0; k < 5; ++k) {
        CHECK(predictions[k]["class"].get<int64_t>() == top[k].item<int64_t>());
        const double logit = predictions[k]["logit"].get<double>();
        CHECK(std::abs(logit - official_logits[top[k].item<int64_t>()].item<double>()) <= 1e-4 * scale);
      }
    }
  }
}

TEST_CASE("evidence writes the official stride-8 map and agrees with predict on a non-square image") {
  const auto reference = read_reference(official("reference-bagnet17-s17.pt"));
  const fs::path out = scratch_dir() / "rocket.npy";
  fs::remove(out);
  const Result r = run("evidence " + image("rocket-160x208.png") + weights("bagnet17-s17.pth.tar") + kAsStored +
                       " --class 'schooner,3,999' --npy '" + out.string() + "' --json");
  REQUIRE(r.code == 0);
  const auto json = nlohmann::json::parse(r.out);
  CHECK(json["shape"] == nlohmann::json({3, 18, 24}));
  const torch::Tensor map = bagnet::load_npy(out.string());
  REQUIRE(map.sizes() == torch::IntArrayRef{3, 18, 24});
  const auto classes = torch::tensor({780, 3, 999});
  const torch::Tensor official_map = reference.at("logit_map_160x208")[0].permute({2, 0, 1}).index_select(0, classes);
  CHECK(relative_error(map, official_map) <= 1e-4);

  const Result p = run("predict " + image("rocket-160x208.png") + weights("bagnet17-s17.pth.tar") + kAsStored +
                       " --topk 1000 --json");
  REQUIRE(p.code == 0);
  const auto predictions = nlohmann::json::parse(p.out)["images"][0]["predictions"];
  // predict's logit is the float32 mean of all 1000 classes' maps, the .npy holds 3 classes: the
  // classifier's order and the two float32 means over P positions differ, by at most
  // 2 gamma_n(F + 1) mean(|W| |f| + |b|) + 2 gamma_n(P) mean |map| (float_error.h).
  bagnet::LoadedModel model = bagnet::load_model(fixture("bagnet17-s17.pth.tar"));
  torch::NoGradGuard no_grad;
  const torch::Tensor features = model.net->features(reference.at("input_160x208"));
  const torch::Tensor fc_bound = linear_difference_bound(features, model.net->named_parameters()["fc.weight"].index_select(0, classes),
                                                         model.net->named_parameters()["fc.bias"].index_select(0, classes));
  int64_t compared = 0;
  for (const auto& prediction : predictions) {
    const int64_t c = prediction["class"].get<int64_t>();
    for (int64_t k = 0; k < 3; ++k)
      if (classes[k].item<int64_t>() == c) {
        const double bound = (fc_bound[0][k].mean().item<double>() + 2 * gamma_n(map[k].numel()) * map[k].abs().mean().item<double>()) * kBoundSafety;
        CHECK(std::abs(prediction["logit"].get<double>() - map[k].to(torch::kDouble).mean().item<double>()) <= bound);
        ++compared;
      }
  }
  CHECK(compared == 3);
}

TEST_CASE("evidence --stride 1 writes the official dense heatmap from the PNG") {
  const auto reference = read_reference(official("reference-bagnet9-s9.pt"));
  const fs::path out = scratch_dir() / "rocket-dense.npy";
  fs::remove(out);
  const Result r = run("evidence " + image("rocket-160x208.png") + weights("bagnet9-s9.pth.tar") + kAsStored +
                       " --class 761 --stride 1 --npy '" + out.string() + "' --json");
  REQUIRE(r.code == 0);
  const auto json = nlohmann::json::parse(r.out);
  CHECK(json["geometry"]["kind"] == "dense");
  const torch::Tensor map = bagnet::load_npy(out.string());
  REQUIRE(map.sizes() == torch::IntArrayRef{1, 160, 208});
  CHECK(relative_error(map[0], reference.at("dense_160x208_img0_class761")) <= 1e-4);

  const fs::path half = scratch_dir() / "rocket-stride2.npy";
  const Result s2 = run("evidence " + image("rocket-160x208.png") + weights("bagnet9-s9.pth.tar") + kAsStored +
                        " --class 761 --stride 2 --npy '" + half.string() + "'");
  REQUIRE(s2.code == 0);
  const torch::Tensor sampled = bagnet::load_npy(half.string());
  REQUIRE(sampled.sizes() == torch::IntArrayRef{1, 80, 104});
  using torch::indexing::None;
  using torch::indexing::Slice;
  // Both within the fixtures' tolerance of the official dense heatmap (the stride-1 map's
  // agreement with the patchwise definition at a derived bound is test_dense's).
  const auto every_other = [](const torch::Tensor& t) { return t.index({Slice(0, None, 2), Slice(0, None, 2)}); };
  CHECK(relative_error(sampled[0], every_other(reference.at("dense_160x208_img0_class761"))) <= 1e-4);

  CHECK(run("evidence " + image("rocket-160x208.png") + weights("bagnet9-s9.pth.tar") +
            " --class 1 --stride 3 --npy '" + half.string() + "'").code == 2);
  CHECK(run("evidence " + image("rocket-160x208.png") + weights("bagnet9-s9.pth.tar") +
            " --class 1 --method patchwise --npy '" + half.string() + "'").code == 2);
}

TEST_CASE("default preprocessing (resize 256, crop 224) runs on any image size") {
  const Result r = run("predict " + image("rocket-160x208.png") + weights("bagnet9-s9.pth.tar") + " --json");
  REQUIRE(r.code == 0);
  const auto result = nlohmann::json::parse(r.out)["images"][0];
  CHECK(result["input_size"] == nlohmann::json({224, 224}));
  CHECK(result["map_size"] == nlohmann::json({27, 27}));
  double sum = 0;
  for (const auto& p : result["predictions"]) sum += p["probability"].get<double>();
  CHECK(sum <= 1.0 + 1e-9);
}

TEST_CASE("bad input gives one clear line and the documented exit code") {
  const fs::path dir = scratch_dir();
  auto one_line = [](const Result& r) {
    CHECK(r.err.rfind("error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  };
  Result r = run("predict" + weights("bagnet9-s9.pth.tar"));  // no images
  CHECK(r.code == 2);
  one_line(r);
  r = run("predict " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --bogus");
  CHECK(r.code == 2);
  r = run("frobnicate");
  CHECK(r.code == 2);
  r = run("info --weights '" + (dir / "missing.pth").string() + "'");
  CHECK(r.code == 3);
  one_line(r);
  CHECK(r.err.find("missing.pth") != std::string::npos);

  // A truncated checkpoint.
  const fs::path cut = dir / "cut.pth.tar";
  {
    const std::string bytes = slurp(fixture("bagnet9-s9.pth.tar"));
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  r = run("info --weights '" + cut.string() + "'");
  CHECK(r.code == 3);
  one_line(r);
  CHECK(r.err.find("truncated") != std::string::npos);

  // Wrong architecture forced on a checkpoint.
  r = run("info" + weights("bagnet9-s9.pth.tar") + " --arch bagnet33");
  CHECK(r.code == 3);
  one_line(r);
  CHECK(r.err.find("layer3.0.conv2.weight") != std::string::npos);

  // Unknown class: usage error, and no output file appears.
  const fs::path out = dir / "never.npy";
  fs::remove(out);
  r = run("evidence " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --class unicorn -o '" +
          out.string() + "'");
  CHECK(r.code == 2);
  one_line(r);
  CHECK(r.err.find("unicorn") != std::string::npos);
  CHECK_FALSE(fs::exists(out));

  // Output into a missing directory: a clear error, nothing half-written.
  r = run("evidence " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --class 1 --npy '" +
          (dir / "no-such-dir" / "x.npy").string() + "'");
  CHECK(r.code == 4);  // an output that cannot be written
  one_line(r);

  // One corrupt image among good ones: the good one is processed, exit code 1.
  const fs::path corrupt = dir / "corrupt.png";
  std::ofstream(corrupt) << "\x89PNG\r\n\x1a\n garbage";  // a PNG signature, then nothing decodable
  r = run("predict " + image("chelsea-224x224.png") + " '" + corrupt.string() + "'" + weights("bagnet9-s9.pth.tar") +
          kAsStored);
  CHECK(r.code == 1);
  CHECK(r.out.find("chelsea") != std::string::npos);
  CHECK(r.err.find("corrupt.png") != std::string::npos);
  CHECK(r.err.find("cannot decode") != std::string::npos);

  // An image smaller than the receptive field.
  r = run("predict " + image("chelsea-224x224.png") + weights("bagnet33-s33.pth.tar") + " --resize 20 --crop none");
  CHECK(r.code == 3);
  CHECK(r.err.find("33") != std::string::npos);

  // A library message names the flags, not the library's option fields.
  r = run("predict " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --resize 40 --crop 64");
  CHECK(r.code == 3);
  CHECK(r.err.find("smaller than the 64x64 crop (use a larger --resize, or --crop none)") != std::string::npos);
  CHECK(r.err.find("InputSpec::") == std::string::npos);
}

TEST_CASE("arguments a command does not take are refused; info takes the file; close flags are suggested") {
  const fs::path dir = scratch_dir();
  // info FILE describes FILE (it used to describe the bundled model and exit 0).
  Result r = run("info '" + fixture("bagnet17-s17.pth.tar") + "' --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["receptive_field"] == 17);
  r = run("info '" + fixture("bagnet17-s17.pth.tar") + "'" + weights("bagnet9-s9.pth.tar"));
  CHECK(r.code == 2);
  // A positional argument a command does not take is a usage error naming it.
  r = run("evidence " + image("chelsea-224x224.png") + " stray.png" + weights("bagnet9-s9.pth.tar") + " --class 1 -o x.npy");
  CHECK(r.code == 2);
  r = run("merge a b -o c extra --json");
  CHECK(r.code == 2);
  r = run("info '" + fixture("bagnet17-s17.pth.tar") + "' second.pth");
  CHECK(r.code == 2);
  CHECK(r.err.find("unexpected argument 'second.pth'") != std::string::npos);
  // Unknown flags: the close one is suggested.
  r = run("predict " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --tpok 3");
  CHECK(r.code == 2);
  CHECK(r.err.find("did you mean --topk?") != std::string::npos);
  r = run("heatmap " + image("chelsea-224x224.png") + " --outptu x");
  CHECK(r.err.find("did you mean --output?") != std::string::npos);
  // -o/--output everywhere; the older --npy (evidence) and --out (heatmap, train) still work.
  for (const std::string flag : {"-o", "--output", "--npy"}) {
    CAPTURE(flag);
    const fs::path out = dir / "alias.npy";
    fs::remove(out);
    r = run("evidence " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --class 1 " + flag + " '" + out.string() + "'");
    CHECK(r.code == 0);
    CHECK(fs::exists(out));
  }
  // --stride native is the model's own stride (8 for the official BagNets), reported as such.
  r = run("evidence " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --class 1 -o '" +
          (dir / "native.npy").string() + "' --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["stride"] == 8);
  CHECK(nlohmann::json::parse(r.out)["geometry"]["kind"] == "native");
  r = run("evidence " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --class 1 --stride 16 -o '" +
          (dir / "native.npy").string() + "'");
  CHECK(r.code == 2);
  CHECK(r.err.find("native (8) or 1, 2, 4, 8") != std::string::npos);
#ifdef BAGNET_DEFAULT_MODEL_FILE
  // The bundled model's native stride is 2: its map says 2, and stride 4 is refused at once.
  const std::string example = " '" + std::string(BAGNET_SOURCE_DIR) + "/assets/examples/0000_ankle-boot.png'";
  r = run("evidence" + example + " --class 1 -o '" + (dir / "default.npy").string() + "' --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["stride"] == 2);
  CHECK(nlohmann::json::parse(r.out)["geometry"]["stride"] == 2);
  r = run("evidence" + example + " --class 1 --stride 4 -o '" + (dir / "default.npy").string() + "'");
  CHECK(r.code == 2);
  CHECK(r.err.find("native (2) or 1, 2") != std::string::npos);
#endif

  // ImageNet's "Cardigan" (264, a dog) and "cardigan" (474, a sweater): exact names pick each,
  // a name matching both only case-insensitively is refused with both listed; a class given twice is refused.
  const fs::path out = dir / "cardigan.npy";
  r = run("evidence " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --class cardigan,Cardigan -o '" +
          out.string() + "' --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["classes"][0]["class"] == 474);
  r = run("evidence " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --class CARDIGAN -o '" + out.string() + "'");
  CHECK(r.code == 2);
  CHECK(r.err.find("264 'Cardigan', 474 'cardigan'") != std::string::npos);
  r = run("evidence " + image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + " --class 474,cardigan -o '" + out.string() + "'");
  CHECK(r.code == 2);
  CHECK(r.err.find("twice") != std::string::npos);
}

namespace {

// Width and height from a PNG's IHDR chunk (big-endian at bytes 16..23).
std::pair<int, int> png_size(const fs::path& path) {
  const std::string bytes = slurp(path);
  REQUIRE(bytes.size() > 24);
  REQUIRE(bytes.compare(1, 3, "PNG") == 0);
  auto be32 = [&](size_t at) {
    return (int(uint8_t(bytes[at])) << 24) | (int(uint8_t(bytes[at + 1])) << 16) | (int(uint8_t(bytes[at + 2])) << 8) |
           int(uint8_t(bytes[at + 3]));
  };
  return {be32(16), be32(20)};
}

}  // namespace

TEST_CASE("heatmap renders a directory, reports bad files and refuses to overwrite") {
  const fs::path dir = scratch_dir() / "heatmap-in";
  const fs::path out = scratch_dir() / "heatmap-out";
  fs::remove_all(dir);
  fs::remove_all(out);
  fs::create_directories(dir / "sub");
  fs::create_directories(dir / "other");
  fs::copy_file(official("images/chelsea-224x224.png"), dir / "chelsea.png");
  fs::copy_file(official("images/coffee-224x224.png"), dir / "sub" / "coffee.png");
  fs::copy_file(official("images/rocket-160x208.png"), dir / "other" / "chelsea.png");  // same name, other dir
  std::ofstream(dir / "notes.txt") << "not an image";
  std::ofstream(dir / "sub" / "broken.png", std::ios::binary) << "\x89PNG\r\n\x1a\n truncated";
  const std::string common = weights("bagnet9-s9.pth.tar") + kAsStored + " -o '" + out.string() + "'";

  Result r = run("heatmap '" + dir.string() + "'" + common + " --npy");
  CHECK(r.code == 1);  // some inputs failed
  CHECK(r.err.find("broken.png") != std::string::npos);
  CHECK(r.err.find("notes.txt") != std::string::npos);
  // One line per bad file from bagnet (libpng may add its own warnings about the broken file).
  size_t ours = 0;
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);)
    ours += line.rfind("error: ", 0) == 0 || line.rfind("warning: ", 0) == 0;
  CHECK(ours == 2);
  CHECK(r.out.find("3 picture(s) of 3 image(s)") != std::string::npos);
  CHECK(r.out.find("1 failed, 1 skipped") != std::string::npos);
  CHECK(png_size(out / "chelsea.top1.png").second > 224);
  CHECK(fs::exists(out / "sub" / "coffee.top1.png"));
  CHECK(fs::exists(out / "other" / "chelsea.top1.png"));
  CHECK_FALSE(fs::exists(out / "sub" / "broken.top1.png"));
  const torch::Tensor map = bagnet::load_npy((out / "other" / "chelsea.top1.npy").string());
  CHECK(map.sizes() == torch::IntArrayRef{1, 19, 25});  // rocket 160x208 with q = 9

  // Never overwrite silently: refused before any work, nothing changes.
  const auto before = fs::last_write_time(out / "chelsea.top1.png");
  r = run("heatmap '" + dir.string() + "'" + common);
  CHECK(r.code == 2);
  CHECK(r.err.find("--overwrite") != std::string::npos);
  CHECK(fs::last_write_time(out / "chelsea.top1.png") == before);
  r = run("heatmap '" + (dir / "chelsea.png").string() + "'" + common + " --overwrite --class 3,tabby --style panel");
  CHECK(r.code == 0);
  const auto [panel_w, panel_h] = png_size(out / "chelsea.panel.png");
  CHECK(panel_w > 3 * 224);  // image | class 3 | tabby (+ colour bar)
  CHECK(panel_h > 224);
}

TEST_CASE("heatmap: global scale shares one clip, names never collide, --vs and dense maps") {
  const fs::path out = scratch_dir() / "heatmap-global";
  fs::remove_all(out);
  const std::string images = image("chelsea-224x224.png") + " " + image("coffee-224x224.png");
  const std::string common = weights("bagnet9-s9.pth.tar") + kAsStored + " --json";
  Result r = run("heatmap " + images + common + " --class 1,2 -o '" + (out / "per").string() + "'");
  REQUIRE(r.code == 0);
  auto json = nlohmann::json::parse(r.out);
  REQUIRE(json["pictures"].size() == 4);
  std::set<double> clips;
  for (const auto& p : json["pictures"]) clips.insert(p["clip"].get<double>());
  CHECK(clips.size() == 4);

  r = run("heatmap " + images + common + " --class 1,2 --scale global -o '" + (out / "global").string() + "'");
  REQUIRE(r.code == 0);
  json = nlohmann::json::parse(r.out);
  REQUIRE(json["pictures"].size() == 4);
  clips.clear();
  for (const auto& p : json["pictures"]) clips.insert(p["clip"].get<double>());
  CHECK(clips.size() == 1);
  CHECK(fs::exists(out / "global" / "chelsea-224x224.1-goldfish.png"));

  r = run("heatmap " + images + common + " --scale fixed:0.5 --class top --vs 1 -o '" + (out / "vs").string() + "'");
  REQUIRE(r.code == 0);
  json = nlohmann::json::parse(r.out);
  for (const auto& p : json["pictures"]) CHECK(p["clip"].get<double>() == 0.5);
  CHECK(fs::exists(out / "vs" / "coffee-224x224.top1-vs-1-goldfish.png"));

  // The same file name in two directories gives two outputs.
  const fs::path a = scratch_dir() / "heatmap-a", b = scratch_dir() / "heatmap-b";
  fs::create_directories(a);
  fs::create_directories(b);
  fs::copy_file(official("images/chelsea-224x224.png"), a / "x.png", fs::copy_options::overwrite_existing);
  fs::copy_file(official("images/coffee-224x224.png"), b / "x.png", fs::copy_options::overwrite_existing);
  r = run("heatmap '" + (a / "x.png").string() + "' '" + (b / "x.png").string() + "'" + common + " -o '" +
          (out / "names").string() + "'");
  REQUIRE(r.code == 0);
  CHECK(fs::exists(out / "names" / "heatmap-a" / "x.top1.png"));
  CHECK(fs::exists(out / "names" / "heatmap-b" / "x.top1.png"));

  r = run("heatmap " + image("rocket-160x208.png") + common + " --stride 4 --smooth --npy --frame original -o '" +
          (out / "dense").string() + "'");
  REQUIRE(r.code == 0);
  CHECK(bagnet::load_npy((out / "dense" / "rocket-160x208.top1.npy").string()).sizes() ==
        torch::IntArrayRef{1, 40, 52});

  CHECK(run("heatmap " + images + common + " --style fancy -o '" + out.string() + "'").code == 2);
  CHECK(run("heatmap " + images + common + " --scale fixed:-1 -o '" + out.string() + "'").code == 2);
  CHECK(run("heatmap " + images + common + " --cmap jet -o '" + out.string() + "'").code == 2);
  CHECK(run("heatmap " + images + common).code == 2);  // no -o
}

TEST_CASE("heatmap: --vs titles show the logit difference, dense titles say which mean is which") {
  const fs::path out = scratch_dir() / "heatmap-titles";
  fs::remove_all(out);
  const std::string common = weights("bagnet9-s9.pth.tar") + kAsStored + " --json";
  Result r = run("heatmap " + image("chelsea-224x224.png") + common + " --class 1 --vs 2 -o '" + (out / "vs").string() + "'");
  REQUIRE(r.code == 0);
  auto picture = nlohmann::json::parse(r.out)["pictures"][0];
  const double a = picture["classes"][0]["logit"].get<double>(), b = picture["vs"]["logit"].get<double>();
  const std::string title = picture["titles"][0].get<std::string>();
  CAPTURE(title);
  char expected[128];
  std::snprintf(expected, sizeof expected, b < 0 ? "image logits %.3f\n- (%.3f) = %.3f" : "image logits %.3f\n- %.3f = %.3f",
                a, b, a - b);
  CHECK(title.find(expected) != std::string::npos);
  CHECK(title.find("minus 2 ") != std::string::npos);

  r = run("heatmap " + image("chelsea-224x224.png") + common + " --class 1 --stride 4 -o '" + (out / "dense").string() + "'");
  REQUIRE(r.code == 0);
  picture = nlohmann::json::parse(r.out)["pictures"][0];
  const std::string dense = picture["titles"][0].get<std::string>();
  CAPTURE(dense);
  CHECK(dense.find("image logit ") != std::string::npos);
  CHECK(dense.find("zero-padded map mean ") != std::string::npos);
}

TEST_CASE("heatmap: --class X --vs X is refused; a top class equal to --vs is warned about") {
  const fs::path out = scratch_dir() / "heatmap-self";
  fs::remove_all(out);
  const std::string common = weights("bagnet9-s9.pth.tar") + kAsStored;
  Result r = run("heatmap " + image("chelsea-224x224.png") + common + " --class 5,goldfish --vs 1 -o '" + out.string() + "'");
  CHECK(r.code == 2);
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find("--vs") != std::string::npos);
  CHECK_FALSE(fs::exists(out));

  const Result p = run("predict " + image("chelsea-224x224.png") + common + " --topk 1 --json");
  REQUIRE(p.code == 0);
  const int64_t top = nlohmann::json::parse(p.out)["images"][0]["predictions"][0]["class"].get<int64_t>();
  r = run("heatmap " + image("chelsea-224x224.png") + common + " --class top --vs " + std::to_string(top) + " -o '" +
          out.string() + "'");
  CHECK(r.code == 0);
  CHECK(r.err.find("warning: ") != std::string::npos);
  CHECK(r.err.find("zero everywhere") != std::string::npos);
}

TEST_CASE("heatmap: the style is in the file name, so styles share a folder") {
  const fs::path out = scratch_dir() / "heatmap-styles";
  fs::remove_all(out);
  const std::string common = image("chelsea-224x224.png") + weights("bagnet9-s9.pth.tar") + kAsStored + " -o '" +
                             out.string() + "'";
  CHECK(run("heatmap " + common).code == 0);
  CHECK(fs::exists(out / "chelsea-224x224.top1.png"));  // the default style keeps its names
  const Result r = run("heatmap " + common + " --style overlay");
  CHECK(r.code == 0);
  CHECK(fs::exists(out / "chelsea-224x224.top1.overlay.png"));
  CHECK(run("heatmap " + common + " --style panel").code == 0);
  CHECK(fs::exists(out / "chelsea-224x224.panel.png"));
  CHECK(run("heatmap " + common + " --style overlay").code == 2);  // the same style again: refused
}

TEST_CASE("heatmap: batched passes draw the same pictures and maps as one image at a time") {
  const fs::path dir = scratch_dir() / "heatmap-batched";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "broken.png") << "not a png";
  // Two input sizes (--crop none keeps the rocket's aspect), so batches also break at a size
  // change, and an unreadable file between them.
  const std::string images = image("chelsea-224x224.png") + " '" + (dir / "broken.png").string() + "' " +
                             image("rocket-160x208.png") + " " + image("coffee-224x224.png");
  const std::string common = weights("bagnet9-s9.pth.tar") + " --resize 48 --crop none --npy --threads " +
                             std::to_string(test_threads(2));
  const auto files_of = [](const fs::path& folder) {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(folder))
      if (entry.is_regular_file()) files[fs::relative(entry.path(), folder).string()] = slurp(entry.path());
    return files;
  };
  int number = 0;
  for (const std::string mode : {" --class top:2", " --class top:2 --vs 3 --scale global --stride 4 --style panel"}) {
    const fs::path one = dir / ("one" + std::to_string(number)), many = dir / ("many" + std::to_string(number));
    ++number;
    const Result a = run("heatmap " + images + common + mode + " --batch-size 1 --decode-threads 1 -o '" + one.string() + "'");
    const Result b = run("heatmap " + images + common + mode + " --batch-size 4 --decode-threads 3 -o '" + many.string() + "'");
    CHECK_MESSAGE(a.code == 1, mode);  // the broken file
    CHECK_MESSAGE(b.code == 1, mode);
    CHECK_MESSAGE(b.err.find("broken.png") != std::string::npos, mode);
    const auto pictures = files_of(one);
    CHECK_MESSAGE(pictures.size() == (number == 1 ? 12u : 6u), mode);  // 3 images x 2 classes (or 1 panel) x png + npy
    CHECK_MESSAGE((files_of(many) == pictures), mode);
  }
}

TEST_CASE("heatmap: clashing names of relative inputs get relative folders, never the current directory's path") {
  const fs::path dir = scratch_dir() / "heatmap-relative";
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  // OpenCV decodes by content, so PNG bytes in a .jpg file are a valid input.
  fs::copy_file(official("images/chelsea-224x224.png"), dir / "x.png");
  fs::copy_file(official("images/coffee-224x224.png"), dir / "x.jpg");
  fs::copy_file(official("images/chelsea-224x224.png"), dir / "y.png");
  fs::copy_file(official("images/coffee-224x224.png"), dir / "sub" / "y.png");
  const Result r = run_bagnet("heatmap x.png x.jpg y.png sub/y.png" + weights("bagnet9-s9.pth.tar") + kAsStored + " -o out",
                              scratch_dir(), dir);
  REQUIRE(r.code == 0);
  CHECK(fs::exists(dir / "out" / "x_png.top1.png"));
  CHECK(fs::exists(dir / "out" / "x_jpg.top1.png"));
  CHECK(fs::exists(dir / "out" / "y.top1.png"));
  CHECK(fs::exists(dir / "out" / "sub" / "y.top1.png"));
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "out"))
    if (entry.is_regular_file()) {
      ++files;
      const fs::path relative = entry.path().lexically_relative(dir / "out");
      CAPTURE(relative);
      CHECK(std::distance(relative.begin(), relative.end()) <= 2);
    }
  CHECK(files == 4);
}

TEST_CASE("an image whose header states more than --max-megapixels is refused before decoding") {
  const fs::path big = scratch_dir() / "big.png";
  {
    const std::string bytes = crafted_png(30000, 30000);  // a hundred bytes claiming 900 megapixels
    std::ofstream(big, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const std::string predict = "predict '" + big.string() + "'" + weights("bagnet9-s9.pth.tar");
  Result r = run(predict);
  CHECK(r.code == 3);
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find("big.png: 30000 x 30000 pixels (900 megapixels) is more than the limit of 100 megapixels "
                   "(raise it with --max-megapixels)") != std::string::npos);
  CHECK(r.err.find("set_max_image_pixels") == std::string::npos);

  // Raised: past the check, the decoder then finds no pixel data.
  r = run(predict + " --max-megapixels 1000");
  CHECK(r.code == 3);
  CHECK(r.err.find("megapixels") == std::string::npos);
  CHECK(r.err.find("big.png") != std::string::npos);

  for (const std::string bad : {"0", "-1", "many"}) {
    CAPTURE(bad);
    r = run(predict + " --max-megapixels " + bad);
    CHECK(r.code == 2);
  }
  CHECK(run("browse --help").out.find("--max-megapixels") != std::string::npos);
}
