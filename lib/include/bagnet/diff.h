#pragma once
// Two BagNets on the same images (different q, or before and after fine-tuning): which decisions
// changed, and for each changed decision where the evidence moved. Core part (LibTorch only);
// `bagnet diff` runs it over a dataset (docs/diff.md).
//
//   bagnet::DiffOptions opt;  opt.stride = bagnet::common_dense_stride(a->arch(), b->arch());
//   bagnet::ImageDiff d = bagnet::diff_image(a, b, input_a, input_b, label, opt);
//   if (d.changed()) d.shift->difference;   // [rows, cols]: where the evidence moved
//   bagnet::DiffSummary s(num_classes);  s.add(d);  nlohmann::json j = s.to_json(names);
//
// Direction: model B (`--against`) is "before", model A (`--weights`) "after". A mistake is fixed
// when B got the image wrong and A gets it right, introduced in the opposite case.
//
// Where the evidence moved is read from dense maps (compute_dense_evidence) at a stride both
// models support: their cell (i, j) is the patch centred on the same input pixel whatever q is,
// so the two maps can be subtracted cell by cell. For a changed decision from class b (B's
// prediction) to class a (A's), each model's margin map is map[a] - map[b]; the difference is
// A's margin map minus B's. Positive cells: patches that argue for a over b more under A than
// under B.
#include <bagnet/arch.h>
#include <bagnet/model.h>
#include <bagnet/ranking.h>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bagnet {

struct DiffOptions {
  int64_t stride = 1;          // dense-map stride, one of map_strides() of both models except the native one
  int64_t cells = 3;           // strongest cells listed per direction for a changed decision
  double max_iou = 0.3;        // listed cells overlap at most this much (greedy suppression)
};

// The largest stride below both native strides at which both models give dense maps (1 always
// qualifies): the official BagNets give 4, the bundled Fashion-MNIST model 1.
int64_t common_dense_stride(const Arch& a, const Arch& b);
// Whether `arch` gives a dense map at `stride` (map_strides() without the native stride).
bool gives_dense_map(const Arch& arch, int64_t stride);

// One cell of the difference map and the input pixels it concerns: the larger of the two
// models' q x q patches centred there, clipped to the input.
struct ShiftCell {
  int64_t row = 0, col = 0;
  double value = 0;            // difference of the margins at this cell (logit units)
  Box box;                     // model-input pixels
};

struct EvidenceShift {
  int64_t to_class = 0, from_class = 0;      // a = A's prediction, b = B's prediction
  torch::Tensor margin_a, margin_b;          // [rows, cols] float32 CPU: map[a] - map[b] of A, of B
  torch::Tensor difference;                  // [rows, cols] float32 CPU: margin_a - margin_b
  int64_t stride = 1, patch = 0;             // map stride; the larger q (the boxes' size)
  std::vector<ShiftCell> toward_a, toward_b; // strongest positive / negative cells, strongest first
  double positive_sum = 0, negative_sum = 0; // sums of the difference's positive / negative cells
};

enum class DecisionChange {
  Same,                // same prediction
  Fixed,               // B wrong, A right
  Introduced,          // B right, A wrong
  OtherMistake,        // both wrong, different classes
  Changed,             // unlabelled image, different predictions
};
const char* change_name(DecisionChange change);  // "same", "fixed", "introduced", "other_mistake", "changed"

struct ImageDiff {
  int64_t index = 0;                          // caller's sample index
  std::optional<int64_t> label;
  int64_t predicted_a = 0, predicted_b = 0;
  double margin_a = 0, margin_b = 0;          // logit(a) - logit(b) under each model (image logits)
  double probability_a = 0, probability_b = 0;  // each model's softmax probability of its own prediction
  DecisionChange change = DecisionChange::Same;
  std::optional<EvidenceShift> shift;         // changed decisions only
  bool changed() const { return change != DecisionChange::Same; }
};

// Runs both models on one image: `input_a`, `input_b` [1, C, H, W] float32, each normalised for
// its model (same H, W: the same pixels), on the models' device. Dense maps of the two predicted
// classes are computed only when the predictions differ. Throws Error(InvalidArgument) for inputs
// of different sizes, class counts that differ, or a stride either model cannot give densely.
ImageDiff diff_image(BagNet& a, BagNet& b, const torch::Tensor& input_a, const torch::Tensor& input_b,
                     std::optional<int64_t> label, const DiffOptions& options);

// Two-sided exact McNemar test on the discordant pairs (binomial, p = 1/2): the probability of a
// split at least as uneven as `fixed` : `introduced` if both models were equally accurate.
double mcnemar_p_value(int64_t fixed, int64_t introduced);

// Counts over a dataset in memory that grows with the classes, not the images.
class DiffSummary {
 public:
  explicit DiffSummary(int64_t num_classes);
  void add(const ImageDiff& image);
  // The document docs/diff.md describes (without the models and settings, which the caller adds).
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;

 private:
  struct ClassCounts {
    int64_t samples = 0, right_a = 0, right_b = 0, fixed = 0, introduced = 0;
  };
  int64_t num_classes_;
  int64_t images_ = 0, labelled_ = 0, right_a_ = 0, right_b_ = 0;
  std::map<DecisionChange, int64_t> changes_;
  std::vector<ClassCounts> classes_;
  std::map<std::pair<int64_t, int64_t>, int64_t> moves_;  // (B's class, A's class) of changed decisions
};

}  // namespace bagnet
