#pragma once
// Evidence maps: the per-patch class logits of a BagNet. Because a BagNet's image logit is the
// mean of its patch logits, each cell of this map is exact evidence, not an approximation.
//
//   bagnet::EvidenceOptions opt;
//   opt.classes = {281, 285};                                  // empty: all classes
//   bagnet::EvidenceMap map = bagnet::compute_evidence(model.net, input, opt);
//   map.logits;                      // [N, 2, H', W'] float32, CPU
//   map.geometry.cell_box(0, 0);     // the input pixels cell (0, 0) sees
// Full programs (built against the installed package by the tests): examples/library/evidence_map.cpp
// (this map) and examples/library/dense_map.cpp (compute_dense_evidence below).
#include <bagnet/arch.h>
#include <bagnet/model.h>

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

namespace bagnet {

struct Progress {
  int64_t done = 0;     // units finished
  int64_t total = 0;    // units in all
  std::string stage;    // what is being computed
};
using ProgressCallback = std::function<void(const Progress&)>;

struct EvidenceOptions {
  std::vector<int64_t> classes;   // class indices to compute, in output order; empty: all classes
  ProgressCallback on_progress;   // optional; called from the calling thread
};

struct EvidenceMap {
  torch::Tensor logits;           // [N, K, H', W'] float32, CPU: K = classes.size()
  std::vector<int64_t> classes;   // the class index of each of the K channels
  MapGeometry geometry;           // H', W', stride, q and the input box of every cell

  // [N, K] float32: the mean over all H' x W' positions, i.e. the image logit of each class.
  torch::Tensor image_logits() const;
};

enum class DenseMethod {
  Shared,     // every layer once per distinct position (strides removed, phases folded into the
              // batch: space-to-batch), tiled; exact, the default
  Patchwise,  // the authors' reference: every q x q patch through the network (slow; for checks)
};

struct DenseOptions {
  int64_t stride = 1;              // sample the dense map every `stride` pixels: 1, 2, 4 (presets)
  std::vector<int64_t> classes;    // empty: all classes
  DenseMethod method = DenseMethod::Shared;
  int64_t max_memory_mb = 1536;    // budget for activations of one tile (on the CPU including freed
                                   // blocks kept for reuse); sets the tile size
  int64_t tile = 0;                // output tile side in map cells; 0: largest within the budget
  ProgressCallback on_progress;    // called after each tile (or patch row)
};

// The strides at which maps of `arch` can be computed, in increasing order: the dense strides (1
// and each product of the leading layer strides below the total) and last the native stride
// (total_stride: the network's own map, one forward pass). The bundled Fashion-MNIST model gives
// {1, 2}, the official BagNets {1, 2, 4, 8}.
std::vector<int64_t> map_strides(const Arch& arch);
// "native" or a number -> a stride of map_strides(arch); the native stride means the native map.
// Throws Error(InvalidArgument) listing the valid strides.
int64_t resolve_map_stride(const Arch& arch, const std::string& spec);

// The dense evidence map as the BagNet paper defines it: the normalised image is zero-padded by
// (q-1)/2 on every side and map cell (i, j) is the logit of the q x q patch centred on input pixel
// (stride*i, stride*j).
struct DenseMap {
  torch::Tensor logits;            // [N, K, ceil(H/stride), ceil(W/stride)] float32, CPU
  std::vector<int64_t> classes;
  int64_t stride = 1, patch = 0;   // sampling step and q
  int64_t input_height = 0, input_width = 0;
  int64_t tiles = 0;               // tiles the image was evaluated in
  // The q x q input box of cell (i, j); it extends beyond the image near the border (zeros there).
  Box patch_box(int64_t row, int64_t col) const;
};

// Dense (or stride-2/4 sampled) evidence of `input` [N, in_channels, H, W] float32. Tiles overlap by
// the receptive field, so the result does not depend on the tile size; memory stays bounded for
// any image size.
DenseMap compute_dense_evidence(BagNet& net, const torch::Tensor& input, const DenseOptions& options = {});

// Floating-point operations (2 per multiply-add, convolutions only) of the dense map of an H x W
// input at `stride` with `classes` classes, as computed by DenseMethod::Shared (untiled) and by
// DenseMethod::Patchwise, and of the native map (one ordinary forward pass).
double dense_flops(const Arch& arch, int64_t height, int64_t width, int64_t stride, int64_t classes);
double patchwise_flops(const Arch& arch, int64_t height, int64_t width, int64_t stride, int64_t classes);
double native_flops(const Arch& arch, int64_t height, int64_t width, int64_t classes);

// The native (stride = total stride of the architecture, 8 for the presets) evidence map of
// `input` [N, in_channels, H, W] float32 (normalised, on any device) in one forward pass.
// Throws Error for wrong shapes/dtypes, inputs smaller than q, or class indices out of range.
EvidenceMap compute_evidence(BagNet& net, const torch::Tensor& input, const EvidenceOptions& options = {});

}  // namespace bagnet
