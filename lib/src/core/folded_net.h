#pragma once
// An inference-only copy of a BagNet with every BatchNorm folded into the preceding convolution
// and the network rewritten for a chosen output stride: the leading stride-2 layers whose product
// reaches the output stride keep their stride and every later strided layer runs at stride 1. The
// positions a removed stride would have skipped are then handled in one of two equivalent forms:
//   - SpaceToBatch: after the layer, the s x s phases of the activation are folded into the batch
//     dimension, so later layers run ordinary kernels on smaller images (fastest with oneDNN here,
//     see bench_layers), and the phases are interleaved back after the classifier;
//   - Atrous: all later kernels are dilated by the strides removed before them.
// On a zero-padded image either computes each layer once per distinct position, which is the dense
// BagNet heatmap.
#include <bagnet/model.h>

#include "winograd.h"

#include <torch/types.h>

#include <vector>

namespace bagnet::detail {

struct FoldedConv {
  torch::Tensor weight, bias;  // bias may be undefined
  int64_t stride = 1, dilation = 1;
  Winograd3x3 winograd;  // defined where it beats the direct convolution (winograd_pays_off)
  torch::Tensor operator()(const torch::Tensor& x) const;
};

struct FoldedBlock {
  FoldedConv conv1, conv2, conv3, downsample;
  bool has_downsample = false;
  int64_t split_after = 1;  // SpaceToBatch: phases folded into the batch after this block
  // The block itself, without the split.
  torch::Tensor operator()(const torch::Tensor& x) const;
};

enum class DenseForm { SpaceToBatch, Atrous };

// [N, C, H, W] -> [s*s*N, C, ceil(H/s), ceil(W/s)], channels-last: batch (i*s + j)*N + n holds pixels
// (s*y + i, s*x + j) of image n; H and W are zero-padded up to multiples of s first.
torch::Tensor space_to_batch(const torch::Tensor& x, int64_t s);
// The inverse: [s*s*N, C, h, w] -> [N, C, s*h, s*w].
torch::Tensor batch_to_space(const torch::Tensor& x, int64_t s);

class FoldedNet {
 public:
  // output_stride must be a product of the leading layer strides (1, 2, 4 or 8 for the presets).
  // BFloat16 keeps bfloat16 copies of the folded convolutions (direct, no Winograd: its transforms
  // would add to bfloat16's rounding) and runs the classifier in float32.
  FoldedNet(const BagNetImpl& net, int64_t output_stride, DenseForm form = DenseForm::SpaceToBatch,
            Precision precision = Precision::Float32);
  // [N, C, h, w] float32 (channels-last is fastest) -> [N, K, h', w'] float32 logits of `classes`
  // (empty: all).
  torch::Tensor logits(const torch::Tensor& input, const std::vector<int64_t>& classes) const;
  // [N, C, h, w] float32 -> the classifier's input, in this net's precision: with the total stride
  // as output stride, what BagNetImpl::features computes (the phases of smaller strides stay in the
  // batch dimension).
  torch::Tensor features(const torch::Tensor& input) const;
  int64_t output_stride() const { return output_stride_; }

  // The stages of logits(), exposed so benchmarks can time them one by one: stem, then each block
  // followed by space_to_batch(x, block.split_after) when that is > 1, then classify, then
  // merge_phases with the output size of logits().
  torch::Tensor stem(const torch::Tensor& input) const;
  const std::vector<FoldedBlock>& blocks() const { return blocks_; }
  torch::Tensor classify(const torch::Tensor& features, const std::vector<int64_t>& classes) const;
  torch::Tensor merge_phases(const torch::Tensor& logits, int64_t rows, int64_t cols) const;

 private:
  FoldedConv stem1_, stem2_;
  std::vector<FoldedBlock> blocks_;
  torch::Tensor fc_weight_, fc_bias_;  // [K, F, 1, 1], [K]
  int64_t output_stride_ = 1;
  Precision precision_ = Precision::Float32;
  int64_t patch_ = 1;            // receptive field q
  std::vector<int64_t> splits_;  // SpaceToBatch factors in the order applied
};

// Floating-point operations (2 per multiply-add) of the a trous network at `output_stride` on an
// input of h x w pixels (already padded), with `classes` rows of the classifier, counting only the
// positions computed by the a trous form (space-to-batch adds at most s-1 padded rows and columns per
// phase image, which are not counted). With the
// total stride it is the cost of an ordinary forward pass.
double folded_flops(const Arch& arch, int64_t h, int64_t w, int64_t output_stride, int64_t classes);

// Strides a dense map can be sampled at without recomputation: the prefix products of the layer
// strides, e.g. {1, 2, 4, 8} for the presets.
std::vector<int64_t> dense_strides(const Arch& arch);

}  // namespace bagnet::detail
