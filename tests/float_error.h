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
  auto matrix = [&](std::vector<float> values, int64_t rows) {
    return torch::tensor(values, opts).view({rows, -1}).abs();
  };
  const auto bt = matrix({1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 1, 0, 0, 1, 0, -1}, 4);
  const auto g = matrix({1, 0, 0, .5, .5, .5, .5, -.5, .5, 0, 0, 1}, 4);
  const auto at = matrix({1, 1, 1, 0, 0, 1, -1, -1}, 2);
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

// ---------------------------------------------------------------------------------------------
// Whole networks. Worst-case bounds like the ones above grow with |W| |x| through every layer and
// are vacuous after a few dozen layers (larger than the logits themselves for the random test
// networks). The comparisons of whole BagNets therefore use the probabilistic rounding-error
// analysis of Higham and Mary ("A new approach to probabilistic rounding error analysis", SIAM J.
// Sci. Comput. 41(5), 2019): rounding errors are mean independent with |delta| <= u, so to first
// order an output's error is a martingale sum over all rounding events k,
//     error = sum_k g_k delta_k,   g_k = d output / d (value rounded at k),
// and by the Azuma-Hoeffding inequality
//     P(|error| >= lambda * sqrt(sum_k (g_k u m_k)^2)) <= 2 exp(-lambda^2 / 2),
// m_k bounding the rounded partial sum. For a dot product of n terms (any order) m_k <= sum|terms|
// and there are at most n + 1 roundings per output element, so each layer output y_e contributes
// g_e^2 u^2 (n + 1) (sum|terms|_e)^2. The g_e come from one backward pass per output class; lambda
// = 8 makes a false failure less likely than 3e-14 per compared value. Two evaluations of the same
// output (other kernels, orders, tilings) differ by at most the sum of their two bounds.
constexpr double kLambda = 8;

// A float32 tensor with an elementwise bound on its distance from the exactly computed value.
struct Bounded {
  torch::Tensor value, error;
};

namespace detail {

// The walk through the network in float32, differentiable, recording every rounded layer output and
// its local rounding term u^2 (n + 1) (sum|terms|)^2.
struct Trace {
  std::vector<torch::Tensor> outputs, local;
  void record(const torch::Tensor& y, int64_t n, const torch::Tensor& magnitude) {
    outputs.push_back(y);
    local.push_back((kUnitRoundoff * kUnitRoundoff * double(n + 1)) * magnitude.detach().square());
  }
};

// y = a (W x) + c with a, c from BatchNorm (eval mode; a = 1, c = 0 without one). The 8 extra
// roundings cover BatchNorm (or folding it into W and the bias, as the dense maps do) and the bias.
inline torch::Tensor conv_bn(Trace& t, const torch::Tensor& x, torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl* bn) {
  const auto w = conv.weight.detach();
  const auto stride = conv.options.stride();
  const int64_t fan_in = w.size(1) * w.size(2) * w.size(3);
  torch::Tensor y = torch::conv2d(x, w, {}, stride);
  torch::Tensor magnitude = torch::conv2d(x.detach().abs(), w.abs(), {}, stride);
  if (bn) {
    const auto a = (bn->weight / torch::sqrt(bn->running_var + bn->options.eps())).detach().view({1, -1, 1, 1});
    const auto c = (bn->bias - a.flatten() * bn->running_mean).detach().view({1, -1, 1, 1});
    y = y * a + c;
    magnitude = magnitude * a.abs() + (a * bn->running_mean.detach().view({1, -1, 1, 1})).abs() +
                bn->bias.detach().abs().view({1, -1, 1, 1});
  }
  t.record(y, fan_in + 8, magnitude);
  return y;
}

inline torch::Tensor bottleneck(Trace& t, const torch::Tensor& x, torch::nn::Module& block) {
  auto children = block.named_children();
  auto conv = [&](const std::string& name) { return children[name]->as<torch::nn::Conv2dImpl>(); };
  auto bn = [&](const std::string& name) { return children[name]->as<torch::nn::BatchNorm2dImpl>(); };
  torch::Tensor out = torch::relu(conv_bn(t, x, *conv("conv1"), bn("bn1")));
  out = torch::relu(conv_bn(t, out, *conv("conv2"), bn("bn2")));
  out = conv_bn(t, out, *conv("conv3"), bn("bn3"));
  torch::Tensor residual = x;
  if (children.contains("downsample")) {
    auto down = children["downsample"]->named_children();
    residual = conv_bn(t, x, *down["0"]->as<torch::nn::Conv2dImpl>(), down["1"]->as<torch::nn::BatchNorm2dImpl>());
  }
  residual = residual.slice(2, 0, out.size(2)).slice(3, 0, out.size(3));  // cropped as model.cpp does
  const torch::Tensor sum = out + residual;
  t.record(sum, 1, out.detach().abs() + residual.detach().abs());
  return torch::relu(sum);
}

// Per-patch logits [N, K, H', W'] of model.cpp's forward, traced.
inline torch::Tensor traced_logits(Trace& t, BagNet& net, const torch::Tensor& input, const std::vector<int64_t>& classes) {
  auto children = net->named_children();
  torch::Tensor x = conv_bn(t, input, *children["conv1"]->as<torch::nn::Conv2dImpl>(), nullptr);
  x = torch::relu(conv_bn(t, x, *children["conv2"]->as<torch::nn::Conv2dImpl>(), children["bn1"]->as<torch::nn::BatchNorm2dImpl>()));
  for (size_t s = 1; children.contains("layer" + std::to_string(s)); ++s)
    for (const auto& block : children["layer" + std::to_string(s)]->children()) x = bottleneck(t, x, *block);
  torch::Tensor weight = net->named_parameters()["fc.weight"].detach(), bias = net->named_parameters()["fc.bias"].detach();
  if (!classes.empty()) {
    const auto index = torch::tensor(classes, torch::kLong).to(weight.device());
    weight = weight.index_select(0, index);
    bias = bias.index_select(0, index);
  }
  const auto w = weight.view({weight.size(0), weight.size(1), 1, 1});
  const torch::Tensor logits = torch::conv2d(x, w, bias);
  t.record(logits, weight.size(1), torch::conv2d(x.detach().abs(), w.abs(), bias.abs()));
  return logits;
}

// Bounds of the outputs [N, K]: for each class k one backward pass of sum_n outputs[n][k] (the
// batch items are independent, so each item's gradients are its own).
inline torch::Tensor output_bounds(const Trace& t, const torch::Tensor& outputs) {
  std::vector<torch::Tensor> columns;
  for (int64_t k = 0; k < outputs.size(1); ++k) {
    const auto grads = torch::autograd::grad({outputs.select(1, k).sum()}, t.outputs, {}, true, false, true);
    torch::Tensor variance = torch::zeros({outputs.size(0)}, outputs.options().dtype(torch::kDouble));
    for (size_t l = 0; l < grads.size(); ++l)
      if (grads[l].defined())
        variance += (grads[l].to(torch::kDouble).square() * t.local[l].to(torch::kDouble)).flatten(1).sum(1);
    columns.push_back(kLambda * variance.sqrt());
  }
  return torch::stack(columns, 1).to(torch::kCPU);
}

}  // namespace detail

// Image logits [N, K] (the mean of the per-patch logits over the P positions, as forward() and
// the reports compute it) of input [N, C, H, W] float32, with the bound on their rounding error;
// the float32 mean adds P + 1 roundings of at most the mean of |map|.
inline Bounded image_logits_bounded(BagNet& net, const torch::Tensor& input) {
  torch::AutoGradMode enable(true);
  const auto device = net->parameters().front().device();
  detail::Trace t;
  const torch::Tensor x = input.to(device, torch::kFloat).detach().requires_grad_(true);
  const torch::Tensor map = detail::traced_logits(t, net, x, {});
  const torch::Tensor logits = map.mean({2, 3});
  t.record(logits, map.size(2) * map.size(3), map.detach().abs().mean({2, 3}));
  return {logits.detach().to(torch::kCPU), detail::output_bounds(t, logits)};
}

// The dense map at `stride` (evidence.h's compute_dense_evidence) with its bound: cell (i, j) is the
// network on the q x q patch of the input zero-padded by (q - 1) / 2 and centred on (stride i,
// stride j); without `zero_pad`, the patches of the input itself at that stride (FoldedNet's valid
// map). Each patch is an independent batch item, so the gradients are per cell. Valid where the
// dense pass uses no Winograd layer, which is REQUIREd (3x3 layers below 128 channels on the CPU).
// input [N, C, H, W] -> [N, K, rows, cols].
inline Bounded dense_logits_bounded(BagNet& net, const torch::Tensor& input, int64_t stride,
                                    const std::vector<int64_t>& classes = {}, bool zero_pad = true) {
  for (const auto& p : net->named_parameters())
    if (p.value().dim() == 4 && p.value().size(2) == 3)
      REQUIRE_FALSE(bagnet::detail::winograd_pays_off(p.value(), 1, 1));
  torch::AutoGradMode enable(true);
  const auto device = net->parameters().front().device();
  const int64_t q = receptive_field(net->arch()), n = input.size(0), half = zero_pad ? (q - 1) / 2 : 0;
  const auto padded = torch::constant_pad_nd(input.to(device, torch::kFloat), {half, half, half, half});
  const int64_t rows = (padded.size(2) - q) / stride + 1, cols = (padded.size(3) - q) / stride + 1;
  // [N, C q q, rows cols] -> [N rows cols, C, q, q]
  const auto patches = torch::nn::functional::unfold(padded, torch::nn::functional::UnfoldFuncOptions(q).stride(stride))
                           .view({n, input.size(1), q, q, rows * cols})
                           .permute({0, 4, 1, 2, 3})
                           .reshape({n * rows * cols, input.size(1), q, q})
                           .detach()
                           .requires_grad_(true);
  detail::Trace t;
  const torch::Tensor logits = detail::traced_logits(t, net, patches, classes).flatten(1);  // [N rows cols, K]
  auto to_map = [&](const torch::Tensor& v) { return v.reshape({n, rows, cols, -1}).permute({0, 3, 1, 2}).contiguous(); };
  return {to_map(logits.detach().to(torch::kCPU)), to_map(detail::output_bounds(t, logits))};
}

}  // namespace bagnet::test
