#pragma once
// Evidence maps: the per-patch class logits of a BagNet. Because a BagNet's image logit is the
// mean of its patch logits, each cell of this map is exact evidence, not an approximation.
//
//   bagnet::EvidenceOptions opt;
//   opt.classes = {281, 285};                                  // empty: all classes
//   bagnet::EvidenceMap map = bagnet::compute_evidence(model.net, input, opt);
//   map.logits;                      // [N, 2, H', W'] float32, CPU
//   map.geometry.cell_box(0, 0);     // the input pixels cell (0, 0) sees
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

// The native (stride = total stride of the architecture, 8 for the presets) evidence map of
// `input` [N, in_channels, H, W] float32 (normalised, on any device) in one forward pass.
// Throws Error for wrong shapes/dtypes, inputs smaller than q, or class indices out of range.
EvidenceMap compute_evidence(BagNet& net, const torch::Tensor& input, const EvidenceOptions& options = {});

}  // namespace bagnet
