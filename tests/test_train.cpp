// Model files (save/load round trip, damage), training (the loss falls; resume after an
// interruption gives the same weights as an uninterrupted run) and evaluation on a hand-made case.
#include <bagnet/error.h>
#include <bagnet/model.h>
#include <bagnet/model_file.h>
#include <bagnet/train.h>

#include "float_error.h"

#include "scratch.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace fs = std::filesystem;
using namespace bagnet;
using namespace bagnet::test;

namespace {

// Two stages, custom strides, one input channel: small enough for fast tests, unusual enough to
// show that nothing assumes the official layout.
const char* kSpec = "blocks=1-1,kernel3=1-0,strides=1-2,widths=4-8,stem=8,expansion=2,in=1,classes=3";

fs::path scratch(const std::string& name) { return scratch_path("train", name); }

ModelMeta make_meta(const Arch& arch) {
  ModelMeta m;
  m.arch = arch;
  m.class_names = {"stripes", "columns", "dots"};
  m.input.channels = 1;
  m.input.resize = std::nullopt;
  m.input.crop = 12;
  m.input.mean = {0.25f};
  m.input.std = {0.5f};
  m.training = R"({"data":"synthetic","seed":7})";
  return m;
}

// Three classes of 12x12 textures (rows, columns, dots) with seeded noise.
TensorSource synthetic(int64_t per_class, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t n = 3 * per_class;
  torch::Tensor x = torch::randn({n, 1, 12, 12}) * 0.3;
  torch::Tensor y = torch::empty({n}, torch::kLong);
  const auto r = torch::arange(12);
  const torch::Tensor rows = (r.remainder(2) == 0).to(torch::kFloat).view({12, 1}).expand({12, 12});
  const torch::Tensor cols = rows.t();
  const torch::Tensor dots = rows * cols;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 3;
    y[i] = c;
    x[i][0] += c == 0 ? rows : c == 1 ? cols : dots;
  }
  return TensorSource(x, y, "synthetic");
}

std::vector<uint8_t> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

bool same_weights(const BagNet& a, const BagNet& b, double tolerance) {
  const StateDict sa = state_dict_of(a), sb = state_dict_of(b);
  if (sa.size() != sb.size()) return false;
  for (size_t i = 0; i < sa.size(); ++i) {
    if (sa[i].first != sb[i].first || sa[i].second.sizes() != sb[i].second.sizes()) return false;
    const double diff = (sa[i].second.to(torch::kDouble) - sb[i].second.to(torch::kDouble)).abs().max().item<double>();
    if (diff > tolerance) {
      MESSAGE(sa[i].first << " differs by " << diff);
      return false;
    }
  }
  return true;
}

TrainOptions small_recipe() {
  TrainOptions o;
  o.epochs = 3;
  o.batch_size = 16;
  o.lr = 0.05;
  o.augment_shift = 1;
  o.augment_flip = true;
  o.fill = {-0.5f};
  o.seed = 11;
  return o;
}

}  // namespace

TEST_CASE("model file: save and load round trip, official loader, metadata") {
  torch::set_num_threads(1);
  const Arch arch = parse_arch(kSpec);
  BagNet net(arch);
  init_weights(net, 3);
  {  // non-trivial BatchNorm statistics, so that buffers are checked too
    torch::NoGradGuard g;
    for (auto& b : net->named_buffers())
      if (b.key().find("running") != std::string::npos) b.value().uniform_(0.5, 1.5);
  }
  net->eval();
  const ModelMeta meta = make_meta(arch);
  const fs::path file = scratch("roundtrip.pt");
  const StateDict extra{{"first.fc.weight", torch::ones({3, 16})}};
  save_model_file(file.string(), state_dict_of(net), meta, extra);

  const Checkpoint ckpt = read_checkpoint(file.string());
  CHECK(ckpt.format == CheckpointFormat::Zip);
  CHECK(ckpt.wrapper_key == "state_dict");
  REQUIRE(ckpt.other_tensors.size() == 1);
  CHECK(ckpt.other_tensors[0].first == "training_state");
  CHECK(torch::equal(ckpt.other_tensors[0].second[0].second, torch::ones({3, 16})));
  const StateDict original = state_dict_of(net);
  REQUIRE(ckpt.tensors.size() == original.size());
  for (size_t i = 0; i < original.size(); ++i) {
    CHECK(ckpt.tensors[i].first == original[i].first);
    CHECK(torch::equal(ckpt.tensors[i].second, original[i].second));
  }

  LoadedModel loaded = load_model(file.string());
  REQUIRE(loaded.meta.has_value());
  CHECK(loaded.arch == arch);  // strides 1-2 come from the metadata, not the default guess
  CHECK(loaded.arch.strides == std::vector<int64_t>{1, 2});
  CHECK(loaded.meta->class_names == meta.class_names);
  CHECK(loaded.meta->input.channels == 1);
  CHECK(!loaded.meta->input.resize.has_value());
  CHECK(loaded.meta->input.crop == std::optional<int64_t>(12));
  CHECK(loaded.meta->input.mean == meta.input.mean);
  CHECK(loaded.meta->input.std == meta.input.std);
  CHECK(nlohmann::json::parse(loaded.meta->training)["seed"] == 7);
  CHECK(loaded.meta->resume.empty());
  const torch::Tensor x = torch::randn({2, 1, 12, 12});
  CHECK(torch::equal(loaded.net->forward(x), net->forward(x)));
  // Detection from the tensors alone would assume the official strides.
  CHECK(detect_arch(ckpt.tensors).strides == std::vector<int64_t>{2, 1});
  // An explicit architecture still overrides the file's.
  CHECK(load_model(file.string(), LoadOptions{"blocks=1-1,kernel3=1-0,strides=1-1,widths=4-8,stem=8,expansion=2,in=1,classes=3"})
            .arch.strides == std::vector<int64_t>{1, 1});
}

TEST_CASE("model file: inconsistent metadata is refused, damaged files are errors") {
  const Arch arch = parse_arch(kSpec);
  BagNet net(arch);
  init_weights(net, 1);
  ModelMeta bad = make_meta(arch);
  bad.class_names.pop_back();
  CHECK_THROWS_AS(save_model_file(scratch("bad.pt").string(), state_dict_of(net), bad), Error);
  bad = make_meta(arch);
  bad.input.mean = {0.1f, 0.2f, 0.3f};
  CHECK_THROWS_AS(save_model_file(scratch("bad.pt").string(), state_dict_of(net), bad), Error);
  CHECK(!fs::exists(scratch("bad.pt")));

  // Numbers out of range are refused before any conversion (fuzz_model_meta found resize 9.9e64 to be
  // undefined behaviour: tests/fuzz/corpus/model_meta/regression-huge-resize.json).
  const std::string good = meta_to_json(make_meta(arch));
  auto with = [&](const std::string& key, const std::string& value) {
    nlohmann::json j = nlohmann::json::parse(good);
    j["input"][key] = nlohmann::json::parse(value);
    return j.dump();
  };
  for (const std::string json : {with("resize", "9.87e64"), with("crop", "2.5"), with("channels", "18446744073709551615"),
                                 with("mean", "[1e300]"), with("std", "[\"x\"]")}) {
    CAPTURE(json);
    CHECK_THROWS_WITH_AS(meta_from_json(json, "m.pt"), doctest::Contains("m.pt: "), Error);
  }
  CHECK(meta_from_json(with("mean", "[0.25]"), "m.pt").input.mean == std::vector<float>{0.25f});

  for (const std::string json : {std::string("{"), std::string(R"({"format":"other","version":1})"),
                                 std::string(R"({"format":"bagnet-lens model","version":2})"),
                                 meta_to_json(make_meta(arch)).replace(2, 0, "\"x\":1,")}) {
    CAPTURE(json);
    if (json.find("\"x\":1") != std::string::npos) {
      CHECK_NOTHROW(meta_from_json(json, "m"));  // unknown keys are ignored (newer writers)
      continue;
    }
    try {
      meta_from_json(json, "m.pt");
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::BadInput);
      CHECK(std::string(e.what()).rfind("m.pt: ", 0) == 0);
    }
  }

  // Metadata claiming a far larger network than the stored weights (a file of kilobytes declaring
  // terabytes): refused naming the file before the network is built.
  {
    ModelMeta huge = make_meta(arch);
    const size_t stages = huge.arch.blocks.size();
    huge.arch.blocks.assign(stages, 64);
    huge.arch.kernel3.assign(stages, 64);
    huge.arch.widths.assign(stages, 4096);
    huge.arch.expansion = 16;
    const fs::path claim = scratch("huge-claim.pt");
    save_model_file(claim.string(), state_dict_of(net), huge);
    try {
      load_model(claim.string());
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::BadInput);
      CHECK(std::string(e.what()).rfind(claim.string() + ": its metadata declares a network of ", 0) == 0);
    }
  }

  const fs::path file = scratch("damage.pt");
  save_model_file(file.string(), state_dict_of(net), make_meta(arch));
  const std::vector<uint8_t> bytes = slurp(file);
  const fs::path damaged = scratch("damaged.pt");
  int loaded = 0, rejected = 0;
  for (size_t cut = 0; cut < bytes.size(); cut += 37) {
    spit(damaged, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)));
    CHECK_THROWS_AS(load_model(damaged.string()), Error);
  }
  std::mt19937 rng(17);
  for (int trial = 0; trial < 150; ++trial) {
    std::vector<uint8_t> copy = bytes;
    copy[rng() % copy.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    spit(damaged, copy);
    try {
      load_model(damaged.string());
      ++loaded;  // e.g. a flipped byte in padding or in an unused header field
    } catch (const Error&) {
      ++rejected;
    }
  }
  CHECK(rejected > 100);  // CRC-32 guards every entry's data
  MESSAGE("damaged model files: " << rejected << " rejected, " << loaded << " harmless");
}

TEST_CASE("training on a small subset reduces the loss") {
  torch::set_num_threads(1);
  const TensorSource data = synthetic(32, 5);
  BagNet net(parse_arch(kSpec));
  init_weights(net, 2);
  const EvalResult before = evaluate_model(net, data);
  TrainOptions o = small_recipe();
  o.epochs = 6;
  o.batch_size = 8;
  o.lr = 0.2;
  const TrainResult r = train_model(net, data, &data, o);
  const EvalResult after = evaluate_model(net, data);
  MESSAGE("loss " << before.loss << " -> " << after.loss << ", top-1 " << before.top1 << " -> " << after.top1);
  REQUIRE(r.history.size() == 6);
  CHECK(after.loss < 0.7 * before.loss);
  CHECK(r.history.back().train_loss < r.history.front().train_loss);
  CHECK(after.top1 > 0.8);
  CHECK(r.history.back().val_top1 == doctest::Approx(after.top1));
  CHECK(!net->is_training());
}

TEST_CASE("resume after an interruption equals an uninterrupted run") {
  torch::set_num_threads(1);
  const TensorSource data = synthetic(8, 9);
  const Arch arch = parse_arch(kSpec);
  TrainOptions o = small_recipe();
  o.checkpoint_meta = make_meta(arch);

  SUBCASE("sgd") {}
  SUBCASE("adam") {
    o.optimizer = OptimizerKind::Adam;
    o.lr = 0.01;
  }
  BagNet full(arch);
  init_weights(full, 4);
  o.checkpoint_path = scratch("full.ckpt").string();
  train_model(full, data, nullptr, o);

  BagNet killed(arch);
  init_weights(killed, 4);
  TrainOptions interrupted = o;
  interrupted.checkpoint_path = scratch("killed.ckpt").string();
  interrupted.on_epoch = [](const EpochStats& s) {
    if (s.epoch == 2) throw std::runtime_error("killed");
  };
  CHECK_THROWS_WITH(train_model(killed, data, nullptr, interrupted), "killed");

  BagNet resumed(arch);
  init_weights(resumed, 99);  // different start: everything must come from the checkpoint
  TrainOptions again = o;
  again.checkpoint_path = interrupted.checkpoint_path;
  const TrainResult r = train_model(resumed, data, nullptr, again, again.checkpoint_path);
  CHECK(r.resumed_epochs == 2);
  CHECK(r.history.size() == 3);
  CHECK(same_weights(resumed, full, 0.0));

  // The checkpoint is a model file too.
  const LoadedModel ckpt = load_model(again.checkpoint_path);
  REQUIRE(ckpt.meta.has_value());
  CHECK(!ckpt.meta->resume.empty());
  CHECK(same_weights(ckpt.net, full, 0.0));

  TrainOptions other = o;
  other.lr *= 2;
  BagNet wrong(arch);
  try {
    train_model(wrong, data, nullptr, other, again.checkpoint_path);
    FAIL("resumed with another recipe");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::InvalidArgument);
    CHECK(std::string(e.what()).find("lr") != std::string::npos);
  }
}

TEST_CASE("evaluation counts top-1, top-5, confusion and logits exactly") {
  torch::set_num_threads(1);
  // Seven classes, so that the lowest-scoring class is outside the top five.
  Arch arch = parse_arch(kSpec);
  arch.num_classes = 7;
  BagNet net(arch);
  init_weights(net, 8);
  {
    torch::NoGradGuard g;
    for (auto& p : net->named_parameters())
      if (p.key() == "fc.weight") p.value().normal_(0, 1);
  }
  net->eval();
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({3, 1, 12, 12});
  const torch::Tensor logits = net->forward(x);
  const torch::Tensor bound = image_logits_bounded(net, x).error;
  const torch::Tensor order = std::get<1>(logits.sort(1, true));
  // Example 0 labelled with its best class, 1 with its second best, 2 with its worst.
  const std::vector<int64_t> labels{order[0][0].item<int64_t>(), order[1][1].item<int64_t>(),
                                    order[2][6].item<int64_t>()};
  const TensorSource data(x, torch::tensor(labels), "hand");
  EvalOptions opt;
  opt.batch_size = 2;  // a partial last batch
  const EvalResult r = evaluate_model(net, data, opt);
  CHECK(r.count == 3);
  CHECK(r.top1 == doctest::Approx(1.0 / 3));
  CHECK(r.top5 == doctest::Approx(2.0 / 3));
  REQUIRE(r.samples.size() == 3);
  for (int64_t i = 0; i < 3; ++i) {
    const EvalSample& s = r.samples[static_cast<size_t>(i)];
    CHECK(s.label == labels[static_cast<size_t>(i)]);
    CHECK(s.predicted == order[i][0].item<int64_t>());
    // Batches of 2 against one of 3: two float32 evaluations, within twice the bound.
    CHECK(std::abs(s.label_logit - logits[i][s.label].item<double>()) <= 2 * bound[i][s.label].item<double>());
    CHECK(std::abs(s.predicted_logit - logits[i][s.predicted].item<double>()) <= 2 * bound[i][s.predicted].item<double>());
    CHECK(r.confusion[s.label][s.predicted].item<int64_t>() >= 1);
  }
  CHECK(r.confusion.sum().item<int64_t>() == 3);
  CHECK(r.confusion.diagonal().sum().item<int64_t>() == 1);
  // Cross entropy moves by at most 2 max|logit change| (its gradient softmax - onehot has l1 norm
  // <= 2); log-sum-exp over K classes adds gamma_n(2K + 4) of (|loss| + max|logit|) per evaluation.
  const double loss = torch::cross_entropy_loss(logits, torch::tensor(labels)).item<double>();
  const double loss_bound = 2 * 2 * bound.max().item<double>() +
                            2 * gamma_n(2 * logits.size(1) + 4) * (std::abs(loss) + logits.abs().max().item<double>());
  CHECK(std::abs(r.loss - loss) <= loss_bound * kBoundSafety);

  const TensorSource unlabelled(x, torch::tensor(std::vector<int64_t>{0, -1, 2}), "hand");
  CHECK_THROWS_AS(evaluate_model(net, unlabelled), Error);
}
