#include "winograd.h"

#include <torch/torch.h>

#include <array>

namespace bagnet::detail {
namespace {

using torch::indexing::None;

// Rows (or columns) k, k+2, ..., of the t tiles along `dim`.
torch::Tensor taps(const torch::Tensor& x, int64_t dim, int64_t k, int64_t t) { return x.slice(dim, k, k + 2 * t - 1, 2); }

// The 1-d data transform B^T d of F(2, 3) at tile position a, for every tile along `dim` at once:
// B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]].
torch::Tensor data_transform(const torch::Tensor& x, int64_t dim, int a, int64_t t) {
  switch (a) {
    case 0: return taps(x, dim, 0, t) - taps(x, dim, 2, t);
    case 1: return taps(x, dim, 1, t) + taps(x, dim, 2, t);
    case 2: return taps(x, dim, 2, t) - taps(x, dim, 1, t);
    default: return taps(x, dim, 1, t) - taps(x, dim, 3, t);
  }
}

}  // namespace

Winograd3x3::Winograd3x3(const torch::Tensor& weight, const torch::Tensor& bias) : bias_(bias) {
  torch::NoGradGuard no_grad;
  // G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
  const auto g = torch::tensor({1.f, 0.f, 0.f, .5f, .5f, .5f, .5f, -.5f, .5f, 0.f, 0.f, 1.f}).view({4, 3}).to(weight.device());
  const torch::Tensor u = torch::einsum("ak,oikl,bl->aboi", {g, weight.to(torch::kFloat), g});  // [4, 4, Cout, Cin]
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b)
      products_.push_back(u[a][b].unsqueeze(-1).unsqueeze(-1).contiguous(torch::MemoryFormat::ChannelsLast));
}

torch::Tensor Winograd3x3::operator()(const torch::Tensor& x) const {
  const int64_t out_h = x.size(2) - 2, out_w = x.size(3) - 2;
  const int64_t tiles_h = (out_h + 1) / 2, tiles_w = (out_w + 1) / 2;
  torch::Tensor input = x;
  if (2 * tiles_h + 2 > x.size(2) || 2 * tiles_w + 2 > x.size(3))  // odd output: one zero row/column more
    input = torch::constant_pad_nd(x, {0, 2 * tiles_w + 2 - x.size(3), 0, 2 * tiles_h + 2 - x.size(2)}, 0);
  const int64_t cout = products_.front().size(0);
  // The output tiles interleaved: y[a][b] is output pixel (2i + a, 2j + b) of tile (i, j).
  const torch::Tensor out = torch::empty({x.size(0), 2 * tiles_h, 2 * tiles_w, cout}, x.options()).permute({0, 3, 1, 2});
  std::array<std::array<torch::Tensor, 2>, 2> y;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) y[a][b] = out.slice(2, a, None, 2).slice(3, b, None, 2);

  // Row by row of the 4x4 tile positions, so only one row's products are alive at a time. The output
  // transform A^T m A, A^T = [[1, 1, 1, 0], [0, 1, -1, -1]], is accumulated into y as rows arrive.
  for (int a = 0; a < 4; ++a) {
    const torch::Tensor rows = data_transform(input, 2, a, tiles_h);
    std::array<torch::Tensor, 4> m;
    for (int b = 0; b < 4; ++b) m[b] = torch::conv2d(data_transform(rows, 3, b, tiles_w), products_[a * 4 + b]);
    const std::array<torch::Tensor, 2> column{m[0] + m[1] + m[2], m[1] - m[2] - m[3]};
    for (int b = 0; b < 2; ++b) {
      switch (a) {
        case 0: y[0][b].copy_(column[b]); break;
        case 1: y[0][b].add_(column[b]); y[1][b].copy_(column[b]); break;
        case 2: y[0][b].add_(column[b]); y[1][b].sub_(column[b]); break;
        default: y[1][b].sub_(column[b]); break;
      }
    }
  }
  if (bias_.defined()) out.add_(bias_.view({1, -1, 1, 1}));
  return out.slice(2, 0, out_h).slice(3, 0, out_w);
}

bool winograd_pays_off(const torch::Tensor& weight, int64_t stride, int64_t dilation) {
  return weight.device().is_cpu() && weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 && stride == 1 &&
         dilation == 1 && weight.size(1) >= 128 && weight.size(0) >= 128;
}

}  // namespace bagnet::detail
