#pragma once
#include <torch/types.h>

namespace bagnet::detail {

// An unpadded convolution that, for inference on the CPU (no autograd, float32 or bfloat16), always
// runs on oneDNN. LibTorch would pick the kernel by batch size, thread count and tensor size (im2col
// + BLAS for one small image or a few 1x1 ones), so an image's numbers would depend on how many images
// share its pass; oneDNN's result for an image does not (checked by test_arch "batch-invariant"), which
// makes batched runs byte-identical to runs of one image at a time. Training (autograd) and other
// devices keep LibTorch's choice; there the bias is given the input's dtype.
torch::Tensor convolve(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, int64_t stride,
                       int64_t dilation = 1);

}  // namespace bagnet::detail
