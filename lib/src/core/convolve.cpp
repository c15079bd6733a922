#include "convolve.h"

#include <ATen/Context.h>
#include <ATen/ops/mkldnn_convolution.h>
#include <torch/torch.h>

namespace bagnet {
namespace detail {

torch::Tensor convolve(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, int64_t stride,
                       int64_t dilation) {
  const int64_t strides[2] = {stride, stride}, zeros[2] = {0, 0}, dilations[2] = {dilation, dilation};
  const bool one_dnn = x.device().is_cpu() && !torch::GradMode::is_enabled() && at::hasMKLDNN() &&
                       (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16) &&
                       x.scalar_type() == weight.scalar_type();
  if (!one_dnn) {
    const torch::Tensor b = bias.defined() ? bias.to(x.scalar_type()) : bias;
    return torch::conv2d(x, weight, b, strides, zeros, dilations);
  }
  // oneDNN adds a float32 bias to a bfloat16 convolution before rounding its output.
  return at::mkldnn_convolution(x, weight, bias.defined() ? c10::optional<torch::Tensor>(bias) : c10::nullopt, zeros,
                                strides, dilations, 1);
}

}  // namespace detail
}  // namespace bagnet
