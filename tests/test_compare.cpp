// bagnet compare's measurements (compare.h) on random-weight models: reproducible random masks,
// zero interaction between distant patches for a BagNet, agreement counts that add up, TorchScript
// models of every kind of misbehaviour refused with one clear error.
#include "scratch.h"

#include <bagnet/checkpoint.h>
#include <bagnet/compare.h>
#include <bagnet/error.h>
#include <bagnet/model.h>
#include <bagnet/model_file.h>

#include <doctest/doctest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>

using namespace bagnet;

namespace {

Arch small_arch() { return parse_arch("blocks=1-1-1-1,kernel3=1-1-0-0,strides=2-1-1-1,widths=8-8-8-8,stem=8,in=1,classes=5"); }

BagNet small_net() {
  torch::manual_seed(3);
  BagNet net(small_arch());
  net->eval();
  return net;
}

InputSpec grey_spec() {
  InputSpec spec = default_input_spec(1);
  spec.resize = std::nullopt;
  spec.crop = std::nullopt;
  return spec;
}

// A TorchScript module defined here (no Python needed): `body` is the forward method's source.
std::string torchscript(const std::string& name, const std::string& body, int64_t features = 0, int64_t classes = 5) {
  torch::jit::Module m(name);
  if (features > 0) m.register_parameter("w", torch::randn({features, classes}) * 0.1, false);
  m.define("def forward(self, x):\n" + body);
  const std::string path = test::scratch_path("compare", name + ".pt").string();
  m.save(path);
  return path;
}

// The BagNet saved as a model file: "another network" that is a BagNet itself.
std::string bagnet_file(BagNet& net) {
  ModelMeta meta;
  meta.arch = net->arch();
  meta.class_names = {"a", "b", "c", "d", "e"};
  meta.input = grey_spec();
  const std::string path = test::scratch_path("compare", "same-bagnet.pt").string();
  save_model_file(path, state_dict_of(net), meta);
  return path;
}

}  // namespace

TEST_CASE("a TorchScript classifier is read as the other model, its input converted; misbehaving ones are refused") {
  const InputSpec spec = grey_spec();
  const std::string good = torchscript("linear", "    return torch.matmul(torch.flatten(x, 1), self.w)\n", 1024);
  CHECK(is_torchscript_file(good));
  auto other = open_other_model({good, OtherInput::Raw}, spec, 5);
  CHECK(other->kind() == "torchscript");
  const torch::Tensor x = torch::randn({3, 1, 32, 32});
  CHECK(other->logits(x).sizes() == torch::IntArrayRef({3, 5}));
  // Raw input: the module sees x * std + mean, which a module returning its input mean reveals.
  const std::string mean = torchscript("mean", "    return torch.mean(x, [1, 2, 3]).unsqueeze(1).repeat(1, 5)\n");
  auto raw = open_other_model({mean, OtherInput::Raw}, spec, 5);
  auto normalized = open_other_model({mean, OtherInput::Normalized}, spec, 5);
  const double s = spec.std[0], m = spec.mean[0];
  CHECK(raw->logits(x)[1][0].item<double>() == doctest::Approx(x[1].mean().item<double>() * s + m).epsilon(1e-5));
  CHECK(normalized->logits(x)[1][0].item<double>() == doctest::Approx(x[1].mean().item<double>()).epsilon(1e-5));
  // Size and channel conversion: a module that reports its input's shape.
  const std::string shape = torchscript("shape", "    return torch.zeros(x.size(0), 5) + x.size(1) * 1000 + x.size(2)\n");
  OtherModelOptions o{shape, OtherInput::Raw, 20, 3};
  CHECK(open_other_model(o, spec, 5)->logits(x)[0][0].item<double>() == 3020);

  const std::string wide = torchscript("wide", "    return torch.flatten(x, 1)\n");
  auto seven = open_other_model({wide, OtherInput::Raw}, spec, 5);
  CHECK_THROWS_WITH_AS(seven->logits(x), doctest::Contains("its class count differs from the BagNet's"), Error);
  const std::string tuple = torchscript("tuple", "    return (x, x)\n");
  CHECK_THROWS_WITH_AS(open_other_model({tuple, OtherInput::Raw}, spec, 5)->logits(x), doctest::Contains("expected a tensor"), Error);
  const std::string throws = torchscript("throws", "    return torch.matmul(torch.flatten(x, 1), torch.zeros(3, 5))\n");  // fails: shapes
  try {
    open_other_model({throws, OtherInput::Raw}, spec, 5)->logits(x);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Runtime);
    CHECK(std::string(e.what()).find("the model failed") != std::string::npos);
    CHECK(std::string(e.what()).find('\n') == std::string::npos);  // one line
  }
  // A TorchScript file is never read as weights, and garbage is no model.
  CHECK_THROWS_WITH_AS(read_checkpoint(good), doctest::Contains("a TorchScript file"), Error);
  const std::string junk = test::scratch_path("compare", "junk.pt").string();
  std::ofstream(junk) << "not a model";
  CHECK_THROWS_AS(open_other_model({junk, OtherInput::Raw}, spec, 5), Error);
}

TEST_CASE("compare_image: random masks are reproducible from the seed; a BagNet's distant patches do not interact") {
  BagNet net = small_net();
  const InputSpec spec = grey_spec();
  auto same = open_other_model({bagnet_file(net), OtherInput::Raw}, spec, 5);
  CHECK(same->kind() == "bagnet-lens");
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({1, 1, 48, 48});
  // The other model is this very BagNet: its logits are the BagNet's (through raw and back).
  const double scale = net->forward(x).abs().max().item<double>();
  CHECK((same->logits(x).to(torch::kDouble) - net->forward(x).to(torch::kDouble)).abs().max().item<double>() <= 1e-4 * scale);

  CompareOptions options;
  options.ks = {1, 2, 4};
  options.pairs = 3;
  options.steps = 8;
  const ImageComparison a = compare_image(net, *same, x, 2, options, 11);
  const ImageComparison b = compare_image(net, *same, x, 2, options, 11);
  const ImageComparison c = compare_image(net, *same, x, 2, options, 12);
  CHECK(a.random_cells == b.random_cells);
  CHECK(a.random_cells != c.random_cells);
  REQUIRE(a.sensitivity.size() == 3);
  for (size_t i = 0; i < a.sensitivity.size(); ++i) {
    CHECK(a.sensitivity[i].other_random == b.sensitivity[i].other_random);
    CHECK(a.sensitivity[i].other_informative == c.sensitivity[i].other_informative);  // not random
  }
  CHECK(a.explained_class == 2);

  // Masking two patches that no BagNet patch sees together changes the logit by the sum of the two
  // changes: the BagNet is a bag. Rounding: float32 logits of about `scale`, a few ulps each.
  REQUIRE_FALSE(a.pairs.empty());
  for (const auto& p : a.pairs) {
    CHECK(std::abs(p.bagnet_joint - p.bagnet_sum) <= 1e-5 * scale + 1e-6);
    CHECK(std::abs(p.other_joint - p.other_sum) <= 1e-4 * scale + 1e-5);
  }
  // Curves start at the unmasked image's probability and hold steps + 1 points in [0, 1].
  const double p0 = torch::softmax(net->forward(x).to(torch::kDouble), 1)[0][2].item<double>();
  CHECK(a.deletion_bagnet.front() == doctest::Approx(p0).epsilon(1e-6));
  CHECK(a.deletion_other.front() == doctest::Approx(p0).epsilon(1e-3));
  CHECK(a.fractions.size() == 9);
  for (double v : a.insertion_other) CHECK((v >= 0 && v <= 1));
}

TEST_CASE("compare summary: agreement counts add up to the labelled images; kappa and expected errors") {
  CompareOptions options;
  options.ks = {1};
  options.steps = 2;
  CompareSummary summary(options);
  // (label, bagnet, other): 3 both right, 2 only BagNet wrong, 1 only other wrong, 2 both wrong (1 same class).
  const int rows[][3] = {{0, 0, 0}, {1, 1, 1}, {2, 2, 2}, {0, 1, 0}, {1, 2, 1}, {2, 2, 0}, {0, 3, 3}, {1, 3, 4}};
  for (const auto& r : rows) {
    ImageComparison c;
    c.label = r[0];
    c.bagnet_predicted = r[1];
    c.other_predicted = r[2];
    c.sensitivity = {{1, true, 2.0, 1.0, 3.0, 1.0, 2.5}};
    c.pairs = {{1.5, 1.0, 2.0, 2.0}};
    c.fractions = {0, 0.5, 1};
    for (auto* v : {&c.deletion_bagnet, &c.deletion_other, &c.deletion_random_bagnet, &c.deletion_random_other,
                    &c.insertion_bagnet, &c.insertion_other, &c.insertion_random_bagnet, &c.insertion_random_other})
      *v = {1.0, 0.5, 0.0};
    summary.add(c);
  }
  ImageComparison unlabelled;
  unlabelled.sensitivity = {{1, false}};
  unlabelled.fractions = {0, 0.5, 1};
  for (auto* v : {&unlabelled.deletion_bagnet, &unlabelled.deletion_other, &unlabelled.deletion_random_bagnet,
                  &unlabelled.deletion_random_other, &unlabelled.insertion_bagnet, &unlabelled.insertion_other,
                  &unlabelled.insertion_random_bagnet, &unlabelled.insertion_random_other})
    *v = {1.0, 1.0, 1.0};
  summary.add(unlabelled);
  const nlohmann::json j = summary.to_json();
  const auto& e = j["error_agreement"];
  CHECK(j["images"] == 9);
  CHECK(j["labelled"] == 8);
  CHECK(e["both_right"] == 3);
  CHECK(e["only_bagnet_wrong"] == 2);
  CHECK(e["only_other_wrong"] == 1);
  CHECK(e["both_wrong"] == 2);
  CHECK(e["both_right"].get<int>() + e["only_bagnet_wrong"].get<int>() + e["only_other_wrong"].get<int>() +
            e["both_wrong"].get<int>() == j["labelled"].get<int>());
  CHECK(e["shared_mistakes_same_class"] == 1);
  // BagNet right 4/8, other right 5/8: expected both wrong 8 * 0.5 * 0.375; kappa from 5/8 observed agreement.
  CHECK(e["expected_both_wrong"].get<double>() == doctest::Approx(1.5));
  const double chance = 0.5 * 0.625 + 0.5 * 0.375;
  CHECK(e["kappa"].get<double>() == doctest::Approx((5.0 / 8 - chance) / (1 - chance)));
  CHECK(j["accuracy"]["bagnet"].get<double>() == doctest::Approx(0.5));
  const auto& s = j["feature_sensitivity"];
  CHECK(s["images"][0] == 8);  // the unlabelled image measured nothing
  CHECK(s["informative_drop"][0].get<double>() == doctest::Approx(2.0));
  CHECK(s["ratio"][0].get<double>() == doctest::Approx(2.0));
  CHECK(j["interactions"]["other"]["mean_deviation"].get<double>() == doctest::Approx(0.5));
  CHECK(j["interactions"]["bagnet"]["max_abs_deviation"].get<double>() == 0);
  CHECK(j["deletion"]["other_auc"].get<double>() == doctest::Approx((8 * 0.5 + 1.0) / 9));
  CHECK(curve_area({0, 0.5, 1}, {1, 0.5, 0}) == doctest::Approx(0.5));
}
