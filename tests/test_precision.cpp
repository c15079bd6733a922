// bfloat16 inference (Precision::BFloat16): names, where it runs, and how far it may drift from
// float32. The bounds come from bfloat16's unit roundoff u = 2^-8 (8 significant bits): every
// convolution reads activations and weights rounded to bfloat16 and writes a rounded output, so each
// layer adds at most about 3u of relative error to a first order; over the L convolutions on a path
// through the network the map may drift by L * 3u of its largest value. The lower bound makes the
// test fail if the float32 path ran instead (its differences are ~1e-6).
#include <bagnet/arch.h>
#include <bagnet/error.h>
#include <bagnet/evidence.h>
#include <bagnet/model.h>

#include <doctest/doctest.h>
#include <torch/torch.h>

using namespace bagnet;

namespace {

constexpr double kUnitRoundoff = 1.0 / 256;  // bfloat16: 2^-8

// Four stages of one block each with a 3x3 layer in the first two: stem (2 convolutions) + 4 x 3.
Arch small_arch() {
  return parse_arch("blocks=1-1-1-1,kernel3=1-1-0-0,widths=16-16-32-32,stem=16,expansion=2,classes=5,in=3,strides=2-1-1-1");
}
constexpr int kConvolutionsOnAPath = 2 + 4 * 3;

BagNet random_net(uint64_t seed) {
  torch::manual_seed(seed);
  BagNet net(small_arch());
  torch::NoGradGuard no_grad;
  for (auto& buffer : net->named_buffers()) {
    if (buffer.key().find("running_var") != std::string::npos) buffer.value().uniform_(0.5, 1.5);
    if (buffer.key().find("running_mean") != std::string::npos) buffer.value().uniform_(-0.2, 0.2);
  }
  net->eval();
  return net;
}

double relative_error(const torch::Tensor& reference, const torch::Tensor& other) {
  return ((other - reference).abs().max() / reference.abs().max()).item<double>();
}

}  // namespace

TEST_CASE("precision names parse, print and reject others") {
  CHECK(parse_precision("float32") == Precision::Float32);
  CHECK(parse_precision("fp32") == Precision::Float32);
  CHECK(parse_precision("bfloat16") == Precision::BFloat16);
  CHECK(parse_precision("bf16") == Precision::BFloat16);
  CHECK(precision_name(Precision::Float32) == "float32");
  CHECK(precision_name(Precision::BFloat16) == "bfloat16");
  try {
    parse_precision("fp16");
    FAIL("fp16 accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::InvalidArgument);
    CHECK(std::string(e.what()).find("bfloat16") != std::string::npos);
  }
  CHECK_NOTHROW(check_precision_supported(Precision::Float32, torch::kCPU));
}

TEST_CASE("bfloat16 maps stay within bfloat16's rounding of float32, on the CPU where it has the instructions") {
  BagNet net = random_net(5);
  if (!cpu_has_bfloat16()) {
    MESSAGE("no bfloat16 here (CPU without AVX512-BF16/AMX, or oneDNN held below them): only the refusal is checked");
    try {
      net->set_precision(Precision::BFloat16);
      FAIL("bfloat16 accepted on a CPU without bfloat16 instructions");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Runtime);
      CHECK(std::string(e.what()).find("AVX512-BF16") != std::string::npos);
    }
    CHECK(net->precision() == Precision::Float32);
    return;
  }
  torch::NoGradGuard no_grad;
  torch::manual_seed(8);
  const torch::Tensor input = torch::randn({3, 3, 37, 41});
  const torch::Tensor exact = net->patch_logits(net->features(input));
  DenseOptions dense;
  dense.stride = 1;
  const torch::Tensor dense_exact = compute_dense_evidence(net, input.slice(0, 0, 1), dense).logits;

  net->set_precision(Precision::BFloat16);
  CHECK(net->precision() == Precision::BFloat16);
  const double bound = kConvolutionsOnAPath * 3 * kUnitRoundoff;
  const torch::Tensor reduced = net->patch_logits(net->features(input));
  CHECK((reduced.scalar_type() == torch::kFloat));
  CHECK(reduced.sizes().vec() == exact.sizes().vec());
  const double native_error = relative_error(exact, reduced);
  CHECK(native_error < bound);
  CHECK(native_error > 1e-4);
  const torch::Tensor dense_reduced = compute_dense_evidence(net, input.slice(0, 0, 1), dense).logits;
  CHECK((dense_reduced.scalar_type() == torch::kFloat));
  const double dense_error = relative_error(dense_exact, dense_reduced);
  CHECK(dense_error < bound);
  CHECK(dense_error > 1e-4);
  CHECK(relative_error(exact.mean({2, 3}), net->forward(input)) < bound);

  // One kernel for every batch size in bfloat16 too: an image's numbers do not depend on its batch.
  for (int64_t i = 0; i < input.size(0); ++i)
    CHECK(torch::equal(net->patch_logits(net->features(input.slice(0, i, i + 1)))[0], reduced[i]));

  // Inference only: training mode is refused rather than training a copy that is thrown away.
  net->train();
  CHECK_THROWS_AS(net->features(input), Error);
  net->eval();

  net->set_precision(Precision::Float32);
  CHECK(torch::equal(net->patch_logits(net->features(input)), exact));
}
