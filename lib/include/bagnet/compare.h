#pragma once
// The BagNet paper's comparisons between a BagNet and another network, for any image classifier:
// error distribution, feature sensitivity to the BagNet's most informative patches, interactions
// between distant image parts, and deletion/insertion curves in the order of the BagNet's evidence.
// Core part (LibTorch only); `bagnet compare` runs it over a dataset (docs/compare.md).
//
//   bagnet::OtherModel other = bagnet::open_other_model({"cnn.pt", OtherInput::Raw}, bagnet_spec, 10);
//   bagnet::ImageComparison c = bagnet::compare_image(bagnet_net, other, input, label, options, seed);
//   bagnet::CompareSummary summary;  summary.add(c);  nlohmann::json j = summary.to_json(options);
#include <bagnet/model.h>
#include <bagnet/model_input.h>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bagnet {

// What the other model takes: the BagNet's input converted to its convention.
enum class OtherInput {
  Raw,         // pixel values in [0, 1] (the model normalises itself)
  Normalized,  // (x - mean) / std with the BagNet's mean and std: the very tensor the BagNet gets
};

struct OtherModelOptions {
  std::string path;                      // a TorchScript file, or a checkpoint / model file bagnet-lens reads
  OtherInput input = OtherInput::Raw;    // ignored for bagnet-lens model files (they carry their own spec)
  int64_t size = 0;                      // input side it expects; 0: the BagNet's input size (else bilinear resize)
  int64_t channels = 0;                  // 1 or 3; 0: the BagNet's (grey is the channel mean, RGB replicates grey)
  torch::Device device = torch::kCPU;
};

// True for a TorchScript archive (torch.jit.save): a zip holding code (`*/code/` or
// `*/constants.pkl` entries). Such a file is a program, never read as a checkpoint.
bool is_torchscript_file(const std::string& path);

// A loaded classifier other than the BagNet under study.
class OtherModel {
 public:
  virtual ~OtherModel() = default;
  // [N, C, H, W] float32, the BagNet's normalised input -> [N, classes] float32 logits on the CPU.
  // Throws Error(BadInput) when the model's output is not [N, classes] floating point, and wraps
  // anything the model throws into Error(Runtime) naming the file.
  virtual torch::Tensor logits(const torch::Tensor& bagnet_input) = 0;
  virtual std::string description() const = 0;  // e.g. "TorchScript fmnist-cnn.pt (raw [0, 1] input, 1x28x28)"
  virtual std::string kind() const = 0;          // "torchscript" or "bagnet-lens"
};

// Opens `options.path` as TorchScript (is_torchscript_file) or with load_model(), and checks its
// output on one zero input against `classes`. `bagnet_spec` is the BagNet's preprocessing (its
// mean and std undo the normalisation for raw inputs). Throws Error(BadInput) for unreadable files,
// a wrong output shape or class count, Error(Runtime) when the model throws.
std::unique_ptr<OtherModel> open_other_model(const OtherModelOptions& options, const InputSpec& bagnet_spec,
                                             int64_t classes);

enum class MaskFill {
  Mean,  // the image's own mean colour (as `report --verify-occlusion`)
  Blur,  // a Gaussian blur of the image (sigma q/4), which keeps colour and coarse shape
};

struct CompareOptions {
  std::vector<int64_t> ks{1, 2, 4, 8, 16};  // patch counts for the sensitivity curve
  MaskFill fill = MaskFill::Mean;
  int64_t pairs = 4;                        // interaction pairs per image (distant informative patches)
  int64_t steps = 16;                       // deletion / insertion points after the start
  int64_t batch = 16;                       // images per forward pass
  uint64_t seed = 0;                        // random patches and random orders: seed and image index
};

// One image's measurements. Drops are logit(original) - logit(masked) of the explained class.
struct ImageComparison {
  int64_t index = 0;                          // caller's sample index
  std::optional<int64_t> label;
  int64_t explained_class = 0;                // the true class, else the BagNet's prediction
  int64_t bagnet_predicted = 0, other_predicted = 0;
  // Per k of CompareOptions::ks; nullopt where fewer than k non-overlapping patches fit.
  struct KDrops {
    int64_t k = 0;
    bool measured = false;
    double other_informative = 0, other_random = 0;     // the other model's drop
    double bagnet_informative = 0, bagnet_random = 0;   // the BagNet's real drop (forward on the masked image)
    double bagnet_bag = 0;                              // the BagNet's bag-level drop (patches leave the bag)
  };
  std::vector<KDrops> sensitivity;
  struct Pair {
    double other_joint = 0, other_sum = 0;     // drop masking both; sum of the drops masking each alone
    double bagnet_joint = 0, bagnet_sum = 0;
  };
  std::vector<Pair> pairs;
  // Class probability (softmax) after deleting / inserting 0..steps fractions of the map cells.
  std::vector<double> fractions;
  std::vector<double> deletion_bagnet, deletion_other, deletion_random_bagnet, deletion_random_other;
  std::vector<double> insertion_bagnet, insertion_other, insertion_random_bagnet, insertion_random_other;
  std::vector<int64_t> random_cells;           // the first random cells chosen (reproducibility checks)
};

// Runs every measurement on one image. `input` [1, C, H, W] float32 normalised for the BagNet, on
// its device; `label` the true class when known; `image_seed` makes the random choices (e.g.
// options.seed mixed with the sample index). Throws Error(InvalidArgument) for bad options.
ImageComparison compare_image(BagNet& net, OtherModel& other, const torch::Tensor& input,
                              std::optional<int64_t> label, const CompareOptions& options, uint64_t image_seed);

// Area under a curve sampled at increasing `x` (trapezoids).
double curve_area(const std::vector<double>& x, const std::vector<double>& y);

// Aggregates image comparisons in memory that does not grow with the images (sums, histograms of
// bounded size); to_json writes the document docs/compare.md describes.
class CompareSummary {
 public:
  explicit CompareSummary(const CompareOptions& options);
  void add(const ImageComparison& image);
  nlohmann::json to_json() const;

 private:
  struct Moments {
    int64_t n = 0;
    double sum = 0, sum_sq = 0;
    void add(double v);
    double mean() const;
    double standard_error() const;
  };
  CompareOptions options_;
  int64_t images_ = 0, labelled_ = 0, bagnet_right_ = 0, other_right_ = 0;
  int64_t both_right_ = 0, only_bagnet_wrong_ = 0, only_other_wrong_ = 0, both_wrong_ = 0, same_mistake_ = 0;
  int64_t same_prediction_ = 0;
  std::vector<Moments> other_inf_, other_rand_, bagnet_inf_, bagnet_rand_, bagnet_bag_;
  Moments pair_other_dev_, pair_bagnet_dev_, pair_other_rel_;
  std::vector<double> other_deviations_;       // capped reservoir for quantiles
  double bagnet_max_abs_dev_ = 0;
  std::vector<double> fractions_;
  std::vector<Moments> curves_[8];             // deletion/insertion x bagnet/other/random x 2
  Moments auc_[8];
};

}  // namespace bagnet
