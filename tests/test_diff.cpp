// bagnet diff's measurements (diff.h) on random-weight models: a model against itself changes
// nothing; a model against a copy with two classifier rows swapped changes exactly the decisions
// between those classes, with margin maps that are each other's negatives; counts add up; the
// exact McNemar test; strides both models share.
#include <bagnet/diff.h>
#include <bagnet/error.h>
#include <bagnet/evidence.h>
#include <bagnet/model.h>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>

using namespace bagnet;

namespace {

Arch arch_q9() { return parse_arch("blocks=1-1-1-1,kernel3=1-1-0-0,strides=2-1-1-1,widths=8-8-8-8,stem=8,in=1,classes=5"); }
Arch arch_q17() { return parse_arch("blocks=1-1-1-1,kernel3=1-1-1-1,strides=2-1-1-1,widths=8-8-8-8,stem=8,in=1,classes=5"); }

BagNet seeded_net(const Arch& arch, uint64_t seed) {
  torch::manual_seed(seed);
  BagNet net(arch);
  net->eval();
  return net;
}

// A copy of `net` whose classes `i` and `j` trade their classifier rows.
BagNet swapped_copy(BagNet& net, int64_t i, int64_t j) {
  BagNet copy(net->arch());
  copy->eval();
  torch::NoGradGuard no_grad;
  auto source = net->named_parameters();
  for (auto& item : copy->named_parameters()) item.value().copy_(source[item.key()]);
  auto buffers = net->named_buffers();
  for (auto& item : copy->named_buffers()) item.value().copy_(buffers[item.key()]);
  for (const char* name : {"fc.weight", "fc.bias"}) {
    torch::Tensor p = copy->named_parameters()[name];
    const torch::Tensor row_i = p[i].clone();
    p[i].copy_(p[j]);
    p[j].copy_(row_i);
  }
  return copy;
}

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

}  // namespace

TEST_CASE("common_dense_stride: the largest dense stride both models give") {
  CHECK(common_dense_stride(arch_q9(), arch_q17()) == 1);  // total stride 2: dense only at 1
  CHECK(common_dense_stride(arch_preset("bagnet33"), arch_preset("bagnet17")) == 4);
  CHECK(gives_dense_map(arch_preset("bagnet9"), 4));
  CHECK_FALSE(gives_dense_map(arch_preset("bagnet9"), 8));  // the native stride is not a dense map
  CHECK_FALSE(gives_dense_map(arch_q9(), 2));
}

TEST_CASE("mcnemar_p_value: the two-sided exact binomial test of fixed against introduced") {
  CHECK(mcnemar_p_value(0, 0) == 1.0);
  CHECK(mcnemar_p_value(5, 0) == doctest::Approx(2.0 / 32).epsilon(1e-12));
  CHECK(mcnemar_p_value(2, 10) == doctest::Approx(2.0 * (1 + 12 + 66) / 4096).epsilon(1e-12));
  CHECK(mcnemar_p_value(10, 2) == mcnemar_p_value(2, 10));
  CHECK(mcnemar_p_value(6, 6) == 1.0);
  CHECK(mcnemar_p_value(5000, 4000) < 1e-20);  // large counts neither overflow nor underflow to nonsense
  CHECK(mcnemar_p_value(5000, 4000) > 0);
}

TEST_CASE("diff_image: a model against itself changes nothing") {
  BagNet a = seeded_net(arch_q9(), 3);
  torch::manual_seed(7);
  DiffSummary summary(5);
  for (int i = 0; i < 6; ++i) {
    const torch::Tensor x = torch::randn({1, 1, 28, 28});
    const ImageDiff d = diff_image(a, a, x, x, i % 5, DiffOptions{});
    CHECK_FALSE(d.changed());
    CHECK_FALSE(d.shift.has_value());
    CHECK(d.predicted_a == d.predicted_b);
    CHECK(d.margin_a == 0);
    summary.add(d);
  }
  const auto j = summary.to_json({"a", "b", "c", "d", "e"});
  CHECK(j["decisions"]["same"] == 6);
  CHECK(j["accuracy"]["change"].get<double>() == 0);
  CHECK(j["mcnemar"]["p_value"].get<double>() == 1.0);
  CHECK(j["moves"].empty());
}

TEST_CASE("diff_image: swapping two classes' classifier rows moves exactly those decisions, margins negated") {
  BagNet a = seeded_net(arch_q9(), 3);
  torch::manual_seed(11);
  const torch::Tensor x = torch::randn({1, 1, 28, 28}) * 2;
  const torch::Tensor logits = a->forward(x)[0];
  const int64_t p = logits.argmax().item<int64_t>();
  const int64_t r = std::get<1>(logits.topk(2))[1].item<int64_t>();
  BagNet b = swapped_copy(a, p, r);
  DiffOptions options;
  options.cells = 2;

  const ImageDiff fixed = diff_image(a, b, x, x, p, options);
  CHECK(fixed.predicted_a == p);
  CHECK(fixed.predicted_b == r);
  CHECK(fixed.change == DecisionChange::Fixed);
  CHECK(diff_image(a, b, x, x, r, options).change == DecisionChange::Introduced);
  CHECK(diff_image(a, b, x, x, (p + 1) % 5 == r ? (p + 2) % 5 : (p + 1) % 5, options).change == DecisionChange::OtherMistake);
  CHECK(diff_image(a, b, x, x, std::nullopt, options).change == DecisionChange::Changed);
  // Image margins: B scores p and r the other way round.
  CHECK(fixed.margin_a > 0);
  // Float32 logits of magnitude `scale`, summed in another order at most: a few ulps of the scale
  // (a margin near 0 has no relative precision to speak of).
  const double scale = logits.abs().max().item<double>();
  CHECK(std::abs(fixed.margin_b + fixed.margin_a) <= 1e-5 * scale + 1e-7);
  CHECK(fixed.probability_a == doctest::Approx(fixed.probability_b).epsilon(1e-5));

  REQUIRE(fixed.shift.has_value());
  const EvidenceShift& s = *fixed.shift;
  CHECK(s.to_class == p);
  CHECK(s.from_class == r);
  DenseOptions dense;
  dense.classes = {p, r};
  const torch::Tensor maps = compute_dense_evidence(a, x, dense).logits[0];
  const torch::Tensor expected = maps[0] - maps[1];
  // Same float32 maps up to reordering of a two-term sum: a few ulps of the map's scale.
  const double tol = 1e-5 * max_abs(maps) + 1e-7;
  CHECK(s.margin_a.sizes() == torch::IntArrayRef({28, 28}));
  CHECK(max_abs(s.margin_a - expected) <= tol);
  CHECK(max_abs(s.margin_b + expected) <= tol);
  CHECK(max_abs(s.difference - 2 * expected) <= 2 * tol);
  CHECK(s.positive_sum == doctest::Approx(2 * expected.clamp_min(0).sum().item<double>()).epsilon(1e-4));
  CHECK(s.negative_sum == doctest::Approx(2 * expected.clamp_max(0).sum().item<double>()).epsilon(1e-4));
  // The strongest cell toward A is the difference's maximum; boxes are q x q centred on the cell's
  // pixel, clipped to the image.
  REQUIRE(s.toward_a.size() >= 1);
  CHECK(s.toward_a[0].value == doctest::Approx(s.difference.max().item<double>()));
  REQUIRE(s.toward_b.size() >= 1);
  CHECK(s.toward_b[0].value == doctest::Approx(s.difference.min().item<double>()));
  for (const auto& c : s.toward_a) {
    CHECK(c.box.top == std::max<int64_t>(0, c.row - 4));
    CHECK(c.box.left == std::max<int64_t>(0, c.col - 4));
    CHECK(c.box.bottom() == std::min<int64_t>(28, c.row + 5));
    CHECK(c.box.right() == std::min<int64_t>(28, c.col + 5));
    CHECK(c.value > 0);
  }
  CHECK(s.toward_a.size() <= 2);
}

TEST_CASE("diff_image: models of different q share the pixel grid; the summary adds up") {
  BagNet a = seeded_net(arch_q17(), 5);
  BagNet b = seeded_net(arch_q9(), 6);
  torch::manual_seed(13);
  DiffSummary summary(5);
  int64_t changed = 0;
  for (int i = 0; i < 24; ++i) {
    const torch::Tensor x = torch::randn({1, 1, 24, 20}) * 2;
    const ImageDiff d = diff_image(a, b, x, x, i % 4 == 3 ? std::nullopt : std::optional<int64_t>(i % 5), DiffOptions{});
    if (d.changed()) {
      ++changed;
      REQUIRE(d.shift.has_value());
      CHECK(d.shift->difference.sizes() == torch::IntArrayRef({24, 20}));
      CHECK(d.shift->patch == 17);
      CHECK(d.margin_a >= 0);
      CHECK(d.margin_b <= 0);
    }
    summary.add(d);
  }
  const auto j = summary.to_json({"a", "b", "c", "d", "e"});
  const auto& c = j["decisions"];
  CHECK(c["same"].get<int64_t>() + c["fixed"].get<int64_t>() + c["introduced"].get<int64_t>() +
            c["other_mistake"].get<int64_t>() + c["changed_unlabelled"].get<int64_t>() == 24);
  CHECK(24 - c["same"].get<int64_t>() == changed);
  CHECK(j["labelled"] == 18);
  int64_t per_class = 0, moves = 0;
  for (const auto& k : j["per_class"]) per_class += k["samples"].get<int64_t>();
  for (const auto& m : j["moves"]) moves += m["count"].get<int64_t>();
  CHECK(per_class == 18);
  CHECK(moves == changed);
}

TEST_CASE("diff_image: inputs and options it cannot compare are refused") {
  BagNet a = seeded_net(arch_q9(), 3);
  const torch::Tensor x = torch::randn({1, 1, 28, 28});
  CHECK_THROWS_WITH_AS(diff_image(a, a, x, torch::randn({1, 1, 28, 30}), 0, DiffOptions{}), doctest::Contains("same pixels"), Error);
  BagNet ten = seeded_net(parse_arch("blocks=1-1-1-1,kernel3=1-1-0-0,strides=2-1-1-1,widths=8-8-8-8,stem=8,in=1,classes=10"), 3);
  CHECK_THROWS_WITH_AS(diff_image(a, ten, x, x, 0, DiffOptions{}), doctest::Contains("classes"), Error);
  DiffOptions native;
  native.stride = 2;
  CHECK_THROWS_WITH_AS(diff_image(a, a, x, x, 0, native), doctest::Contains("not a dense stride of both models"), Error);
  CHECK_THROWS_WITH_AS(diff_image(a, a, x, x, 7, DiffOptions{}), doctest::Contains("outside the 5 classes"), Error);
}
