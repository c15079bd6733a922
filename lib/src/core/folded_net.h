#pragma once
// An inference-only copy of a BagNet with every BatchNorm folded into the preceding convolution
// and the network rewritten for a chosen output stride: the leading stride-2 layers whose product
// reaches the output stride keep their stride, every later strided layer runs at stride 1 and all
// later kernels are dilated by the strides removed before them (a trous). On a zero-padded image
// this computes each layer once per distinct position, which is the dense BagNet heatmap.
#include <bagnet/model.h>

#include <torch/types.h>

#include <vector>

namespace bagnet::detail {

struct FoldedConv {
  torch::Tensor weight, bias;  // bias may be undefined
  int64_t stride = 1, dilation = 1;
  torch::Tensor operator()(const torch::Tensor& x) const;
};

struct FoldedBlock {
  FoldedConv conv1, conv2, conv3, downsample;
  bool has_downsample = false;
  torch::Tensor operator()(const torch::Tensor& x) const;
};

class FoldedNet {
 public:
  // output_stride must be a product of the leading layer strides (1, 2, 4 or 8 for the presets).
  FoldedNet(BagNet& net, int64_t output_stride);
  // [N, C, h, w] float32 (channels-last is fastest) -> [N, K, h', w'] logits of `classes` (empty: all).
  torch::Tensor logits(const torch::Tensor& input, const std::vector<int64_t>& classes) const;
  int64_t output_stride() const { return output_stride_; }

 private:
  FoldedConv stem1_, stem2_;
  std::vector<FoldedBlock> blocks_;
  torch::Tensor fc_weight_, fc_bias_;  // [K, F, 1, 1], [K]
  int64_t output_stride_ = 1;
};

// Floating-point operations (2 per multiply-add) of the a trous network at `output_stride` on an
// input of h x w pixels (already padded), with `classes` rows of the classifier. With the total
// stride it is the cost of an ordinary forward pass.
double folded_flops(const Arch& arch, int64_t h, int64_t w, int64_t output_stride, int64_t classes);

// Strides a dense map can be sampled at without recomputation: the prefix products of the layer
// strides, e.g. {1, 2, 4, 8} for the presets.
std::vector<int64_t> dense_strides(const Arch& arch);

}  // namespace bagnet::detail
