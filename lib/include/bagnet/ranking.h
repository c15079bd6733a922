#pragma once
// Patch ranking: the map cells (q x q patches) with the most positive and most negative evidence
// for a class, for one image or streamed over a dataset with memory bounded by k per class.
// Boxes are in model-input pixels, from MapGeometry::cell_box (the one place that knows geometry);
// ImageTransform::to_original (image.h) maps them onto the original image.
//
//   bagnet::RankOptions opt;  opt.k = 5;  opt.max_iou = 0.3;      // non-overlapping-ish top 5
//   auto best  = bagnet::top_patches(map.logits[0][0], map.geometry, opt, bagnet::Sign::Positive);
//   auto worst = bagnet::top_patches(map.logits[0][0], map.geometry, opt, bagnet::Sign::Negative);
#include <bagnet/arch.h>

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace bagnet {

enum class Sign {
  Positive,  // largest values first
  Negative,  // smallest (most negative) values first
};

// One map cell: its position, its value (a class logit, or a margin) and the input pixels it sees.
struct PatchScore {
  int64_t row = 0, col = 0;
  double value = 0;
  Box box;                 // model-input pixels, geometry.cell_box(row, col)
};

struct RankOptions {
  int64_t k = 5;             // patches to return (fewer when the map or the suppression allows fewer)
  double max_iou = 1.0;      // a patch is skipped when its IoU with an accepted one exceeds this (1: off)
  double min_distance = 0;   // ... or when its centre is closer than this many input pixels (0: off)
  bool only_signed = true;   // Positive returns only values > 0, Negative only values < 0
};

// Intersection over union of two boxes (0 when either is empty).
double box_iou(const Box& a, const Box& b);

// The k best cells of `map` [H', W'] (any float dtype, any device) in order best first; equal
// values are ordered by (row, col). Suppression is greedy in that order (non-maximum suppression).
// Throws Error(InvalidArgument) for a map whose size differs from the geometry or k < 0.
std::vector<PatchScore> top_patches(const torch::Tensor& map, const MapGeometry& geometry, const RankOptions& options,
                                    Sign sign);

// A patch from a dataset: which sample it came from and its class.
struct RankedPatch {
  int64_t sample = 0;        // caller's index of the image
  int64_t cls = 0;           // class index
  PatchScore patch;
};

// Streaming top-k per class over many images: holds at most k patches per class whatever the
// number of images added (held() says how many it holds). With per_image = m > 0 at most m
// patches of one image enter a class's list (the best m after suppression).
class DatasetTopK {
 public:
  // `classes`: the class indices tracked, in output order; k >= 1; per_image >= 0 (0: no limit).
  DatasetTopK(std::vector<int64_t> classes, int64_t k, int64_t per_image = 0, Sign sign = Sign::Positive,
              RankOptions suppression = {});

  // `maps` [K, H', W'] float32: row k is the map of classes()[k] for image `sample`.
  void add(int64_t sample, const torch::Tensor& maps, const MapGeometry& geometry);

  // The patches of classes()[k], best first (ties: smaller sample, then row, then col first).
  std::vector<RankedPatch> result(size_t k) const;
  const std::vector<int64_t>& classes() const { return classes_; }
  size_t held() const;       // patches held in all classes together (<= k * classes)
  int64_t images() const { return images_; }

 private:
  std::vector<int64_t> classes_;
  int64_t k_, per_image_;
  Sign sign_;
  RankOptions suppression_;
  int64_t images_ = 0;
  std::vector<std::vector<RankedPatch>> heaps_;  // per class: a heap whose top is the worst held
};

}  // namespace bagnet
