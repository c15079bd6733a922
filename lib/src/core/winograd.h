#pragma once
// 3x3 convolutions (stride 1, no dilation, no padding) by Winograd's minimal filtering F(2x2, 3x3):
// each 4x4 input tile gives a 2x2 output tile with 16 channel-mixing products instead of 36, so the
// multiply-adds drop by 2.25x. The 16 products run as 1x1 convolutions (oneDNN; Debian's matmul
// is the slow reference BLAS). On the 2-core CPU this made the 512-channel 3x3 layer of the dense
// BagNet-33 pass 2.6x faster and the 256-channel one 2.3x (bench_layers); below ~128 channels the
// extra passes over memory cost more than the products save. Results differ from a direct
// convolution by rounding only (a few 1e-6 relative; the transforms use the factors 1 and 1/2).
#include <torch/types.h>

#include <vector>

namespace bagnet::detail {

class Winograd3x3 {
 public:
  Winograd3x3() = default;
  // weight [Cout, Cin, 3, 3] float32, bias [Cout] or undefined.
  Winograd3x3(const torch::Tensor& weight, const torch::Tensor& bias);
  bool defined() const { return !products_.empty(); }
  // [N, Cin, H, W] float32 (H, W >= 3; channels-last is fastest) -> [N, Cout, H-2, W-2], the same as
  // torch::conv2d(x, weight, bias) up to rounding.
  torch::Tensor operator()(const torch::Tensor& x) const;

 private:
  std::vector<torch::Tensor> products_;  // 16 x [Cout, Cin, 1, 1]: G g G^T at tile position (a, b), a*4+b
  torch::Tensor bias_;
};

// Whether Winograd3x3 is expected to beat the direct convolution for this layer (measured on the CPU;
// cuDNN picks its own algorithms on a GPU).
bool winograd_pays_off(const torch::Tensor& weight, int64_t stride, int64_t dilation);

}  // namespace bagnet::detail
