#pragma once
// Tolerances derived from float32 rounding-error analysis, not from one machine's results, so the
// comparisons hold whatever summation order a kernel picks (oneDNN's AVX2 or AVX-512 kernels, 1 or
// 2 threads, GEMM or direct convolution).
//
// Model (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., Lemma 3.1 and §3.1):
// every float32 operation rounds with relative error at most u = 2^-24. A sum or dot product of n
// terms, in ANY order, blocked or not, with or without fused multiply-adds, satisfies
//     |computed - exact| <= gamma_n(n) * sum_i |term_i|,   gamma_n(n) = n u / (1 - n u).
// Two evaluations of the same quantity (for example two kernels with different summation orders)
// therefore differ by at most the sum of their two bounds. The bounds below are elementwise: they
// carry the magnitudes involved (|weights| times |inputs|), so cancellation in a result does not
// turn a rounding difference into an apparent failure, and a real mistake (a wrong class row, a
// wrong offset, a lost bias) is still far outside them.
#include <bagnet/arch.h>
#include <bagnet/model.h>

#include "core/winograd.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

namespace bagnet::test {

constexpr double kUnitRoundoff = 0x1p-24;  // float32

inline double gamma_n(int64_t n) {
  const double nu = double(n) * kUnitRoundoff;
  REQUIRE(nu < 0.5);
  return nu / (1 - nu);
}

// The bounds themselves are computed in float32 from non-negative terms (relative error below
// gamma_n(n) ~ 3e-4 for the largest reductions here) and to first order in u (the neglected terms
// are O(n^2 u^2) relative, below 1e-7 here); this factor covers both.
constexpr double kBoundSafety = 1.01;

// max over elements of |a - b| / bound: <= 1 means a and b agree within the bound.
inline double bound_ratio(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bound) {
  const auto ad = a.to(torch::kCPU, torch::kDouble), bd = b.to(torch::kCPU, torch::kDouble);
  const auto limit = bound.to(torch::kCPU, torch::kDouble) * kBoundSafety;
  return ((ad - bd).abs() / limit.clamp_min(1e-300)).max().item<double>();
}

// The largest bound relative to the largest value: how much a comparison with `bound` could hide.
inline double bound_relative_size(const torch::Tensor& bound, const torch::Tensor& values) {
  return bound.abs().max().item<double>() / std::max(1e-300, values.abs().max().item<double>());
}

// y = W x + b evaluated twice in float32 with different orders (for example all classifier rows
// versus a subset of them): |y1 - y2| <= 2 gamma_n(F + 1) (|W| |x| + |b|) elementwise.
// features [N, F, H, W], weight [K, F], bias [K] -> [N, K, H, W].
inline torch::Tensor linear_difference_bound(const torch::Tensor& features, const torch::Tensor& weight,
                                             const torch::Tensor& bias) {
  const auto w = weight.abs().view({weight.size(0), weight.size(1), 1, 1});
  const auto magnitude = torch::conv2d(features.abs(), w, bias.abs());
  return 2 * gamma_n(weight.size(1) + 1) * magnitude;
}

// Winograd F(2x2, 3x3) (winograd.h): y = A^T [ (G g G^T) (.) (B^T d B) ] A, summed over input
// channels in the transformed domain. Rounding happens in the input transform (2 additions per
// dimension), the filter transform (2 additions per dimension; the factors 1/2 are exact), the
// product, the channel sum and the output transform (2 additions per dimension), so
//     |computed - exact| <= gamma_n(Cin + 13) * (sum_c |A^T| [(|G||g||G^T|) (.) (|B^T||d||B|)] |A| + |b|)
// (Barabasz, Anderson, Soodhalter and Gregg, "Error analysis and improving the accuracy of Winograd
// convolution for deep neural networks", ACM TOMS 2020). The magnitude term reaches one pixel left
// of and above an output and three right of and below it, depending on where its 2x2 tile starts; its
// largest value over the four tile phases is a 5x5 correlation of |d|, computed here.
// x [N, Cin, H, W], weight [Cout, Cin, 3, 3] -> magnitude [N, Cout, H-2, W-2].
inline torch::Tensor winograd_magnitude(const torch::Tensor& x, const torch::Tensor& weight) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(weight.device());
  const auto bt = torch::tensor({1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 1, 0, 0, 1, 0, -1}, opts).view({4, 4}).abs();
  const auto g = torch::tensor({1, 0, 0, .5, .5, .5, .5, -.5, .5, 0, 0, 1}, opts).view({4, 3}).abs();
  const auto at = torch::tensor({1, 1, 1, 0, 0, 1, -1, -1}, opts).view({2, 4}).abs();
  // |G||g||G^T| per (out, in) channel: [Co, Ci, 4, 4].
  const auto filter = torch::einsum("ia,oxab,jb->oxij", {g, weight.abs(), g});
  // h[p, q][k, l] = sum_ij |A^T[p,i]| |A^T[q,j]| |B^T[i,k]| |B^T[j,l]| filter[i, j].
  const auto phases = torch::einsum("pi,qj,ik,jl,oxij->pqoxkl", {at, at, bt, bt, filter});
  // Output at phase (p, q) uses input offsets k - p (k = 0..3): align all phases on offsets -1..3.
  auto kernel = torch::zeros({weight.size(0), weight.size(1), 5, 5}, opts);
  using torch::indexing::Slice;
  for (int64_t p = 0; p < 2; ++p)
    for (int64_t q = 0; q < 2; ++q) {
      auto window = kernel.index({Slice(), Slice(), Slice(1 - p, 5 - p), Slice(1 - q, 5 - q)});
      window.copy_(torch::maximum(window, phases[p][q]));
    }
  return torch::conv2d(x.abs().to(torch::kFloat), kernel, {}, 1, 1);
}

// A float32 tensor with an elementwise bound on its distance from the exactly computed value.
struct Bounded {
  torch::Tensor value, error;
};

namespace detail {

inline Bounded relu(const Bounded& x) { return {torch::relu(x.value), x.error}; }

// y = a (W x) + c with a, c from BatchNorm (eval mode; a = 1, c = 0 without one).
inline Bounded conv_bn(const Bounded& x, torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl* bn) {
  const auto& w = conv.weight;
  const auto stride = conv.options.stride();
  const int64_t fan_in = w.size(1) * w.size(2) * w.size(3);
  torch::Tensor value = torch::conv2d(x.value, w, {}, stride);
  torch::Tensor propagated = torch::conv2d(x.error, w.abs(), {}, stride);
  torch::Tensor magnitude = torch::conv2d(x.value.abs() + x.error, w.abs(), {}, stride);
  torch::Tensor shift_magnitude = torch::zeros_like(value);
  if (bn) {
    const auto a = (bn->weight / torch::sqrt(bn->running_var + bn->options.eps())).view({1, -1, 1, 1});
    const auto mean = bn->running_mean.view({1, -1, 1, 1}), beta = bn->bias.view({1, -1, 1, 1});
    value = bn->forward(value);
    propagated = propagated * a.abs();
    magnitude = magnitude * a.abs();
    shift_magnitude = (a * mean).abs() + beta.abs();
  }
  return {value, propagated + gamma_n(fan_in + 8) * (magnitude + shift_magnitude)};
}

inline Bounded crop_to(const Bounded& x, int64_t rows, int64_t cols) {
  return {x.value.slice(2, 0, rows).slice(3, 0, cols), x.error.slice(2, 0, rows).slice(3, 0, cols)};
}

// The bottleneck of model.cpp: three conv+BN layers, the (downsampled) residual cropped at the
// bottom/right, the sum and a ReLU.
inline Bounded bottleneck(const Bounded& x, torch::nn::Module& block) {
  auto child = [&](const std::string& name) { return block.named_children()[name]; };
  auto conv = [&](const std::string& name) { return child(name)->as<torch::nn::Conv2dImpl>(); };
  auto bn = [&](const std::string& name) { return child(name)->as<torch::nn::BatchNorm2dImpl>(); };
  Bounded out = relu(conv_bn(x, *conv("conv1"), bn("bn1")));
  out = relu(conv_bn(out, *conv("conv2"), bn("bn2")));
  out = conv_bn(out, *conv("conv3"), bn("bn3"));
  Bounded residual = x;
  if (block.named_children().contains("downsample")) {
    auto down = child("downsample")->named_children();
    residual = conv_bn(x, *down["0"]->as<torch::nn::Conv2dImpl>(), down["1"]->as<torch::nn::BatchNorm2dImpl>());
  }
  residual = crop_to(residual, out.value.size(2), out.value.size(3));
  const auto sum = out.value + residual.value;
  return relu({sum, out.error + residual.error + kUnitRoundoff * sum.abs()});
}

}  // namespace detail

// The BagNet's per-patch logits [N, K, H', W'] for `input` [N, C, H, W] float32 with a first-order
// elementwise bound on the rounding error of ANY float32 evaluation by direct (or GEMM)
// convolutions, with BatchNorm applied or folded into the weights. Per layer y = a (W x) + c, a and
// c from BatchNorm, n = fan-in:
//     e_y = |a| (|W| e_x) + gamma_n(n + 8) (|a| |W| (|x| + e_x) + |a mean| + |beta|);
// ReLU keeps e (it is 1-Lipschitz); a residual sum adds both errors plus u |sum|. The 8 extra
// roundings cover BatchNorm (or folding it into W and the bias) and the bias addition.
inline Bounded bagnet_logits_bounded(BagNet& net, const torch::Tensor& input, const std::vector<int64_t>& classes = {}) {
  torch::NoGradGuard no_grad;
  auto children = net->named_children();
  const auto device = net->parameters().front().device();
  Bounded x{input.to(device, torch::kFloat), torch::zeros(input.sizes(), torch::TensorOptions(device).dtype(torch::kFloat))};
  x = detail::conv_bn(x, *children["conv1"]->as<torch::nn::Conv2dImpl>(), nullptr);
  x = detail::relu(detail::conv_bn(x, *children["conv2"]->as<torch::nn::Conv2dImpl>(),
                                   children["bn1"]->as<torch::nn::BatchNorm2dImpl>()));
  for (size_t s = 1; children.contains("layer" + std::to_string(s)); ++s)
    for (const auto& block : children["layer" + std::to_string(s)]->children()) x = detail::bottleneck(x, *block);
  torch::Tensor weight = net->named_parameters()["fc.weight"], bias = net->named_parameters()["fc.bias"];
  if (!classes.empty()) {
    const auto index = torch::tensor(classes, torch::kLong).to(weight.device());
    weight = weight.index_select(0, index);
    bias = bias.index_select(0, index);
  }
  const auto w = weight.view({weight.size(0), weight.size(1), 1, 1});
  const auto value = torch::conv2d(x.value, w, bias);
  const auto magnitude = torch::conv2d(x.value.abs() + x.error, w.abs(), bias.abs());
  return {value, torch::conv2d(x.error, w.abs()) + gamma_n(weight.size(1) + 1) * magnitude};
}

// Image logits [N, K] (the mean of the per-patch logits over P positions) with their bound: the
// mean of the map's bound plus gamma_n(P) mean |map| for the float32 mean.
inline Bounded image_logits_bounded(BagNet& net, const torch::Tensor& input) {
  const Bounded map = bagnet_logits_bounded(net, input);
  const int64_t positions = map.value.size(2) * map.value.size(3);
  return {map.value.mean({2, 3}), map.error.mean({2, 3}) + gamma_n(positions) * map.value.abs().mean({2, 3})};
}

// The same for the dense map at `stride` (evidence.h's compute_dense_evidence): cell (i, j) is the
// network on the q x q patch of the input zero-padded by (q - 1) / 2 and centred on (stride i,
// stride j). Valid where the dense pass uses no Winograd layer, which is REQUIREd (3x3 layers below
// 128 channels on the CPU, see winograd_pays_off).
// input [N, C, H, W] -> [N, K, ceil(H / stride), ceil(W / stride)].
inline Bounded dense_logits_bounded(BagNet& net, const torch::Tensor& input, int64_t stride,
                                    const std::vector<int64_t>& classes = {}) {
  for (const auto& p : net->named_parameters())
    if (p.value().dim() == 4 && p.value().size(2) == 3)
      REQUIRE_FALSE(bagnet::detail::winograd_pays_off(p.value(), 1, 1));
  const int64_t q = receptive_field(net->arch()), n = input.size(0);
  const auto padded = torch::constant_pad_nd(input, {(q - 1) / 2, (q - 1) / 2, (q - 1) / 2, (q - 1) / 2});
  const int64_t rows = (input.size(2) + stride - 1) / stride, cols = (input.size(3) + stride - 1) / stride;
  // [N, C q q, rows cols] -> [N rows cols, C, q, q]
  const auto patches = torch::nn::functional::unfold(padded, torch::nn::functional::UnfoldFuncOptions(q).stride(stride))
                           .view({n, input.size(1), q, q, rows * cols})
                           .permute({0, 4, 1, 2, 3})
                           .reshape({n * rows * cols, input.size(1), q, q});
  const Bounded per_patch = bagnet_logits_bounded(net, patches, classes);  // [N rows cols, K, 1, 1]
  auto to_map = [&](const torch::Tensor& t) { return t.view({n, rows, cols, -1}).permute({0, 3, 1, 2}).contiguous(); };
  return {to_map(per_patch.value), to_map(per_patch.error)};
}

}  // namespace bagnet::test
