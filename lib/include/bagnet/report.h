#pragma once
// Evidence reports: what drove a BagNet's decision on one image, and for a mistake which patches
// pulled it from the true class. Versioned JSON, schema in docs/report-schema.json.
//
//   bagnet::ReportContext ctx;  ctx.model = bagnet::fingerprint(model, spec);  ctx.class_names = names;
//   ctx.image.transform = input.transform;  (and index, source, label)
//   bagnet::Report r = bagnet::build_report(model.net, input.tensor, ctx, bagnet::ReportOptions{});
//   std::string line = bagnet::report_to_json(r).dump();
//
// Everything here is exact at the bag level: a BagNet's logit is the mean of its patch logits, so
// removing patches from the bag changes every class mean in a way computed here without running the
// network again. `verify_occlusion` runs it again on a masked image to compare with reality.
#include <bagnet/arch.h>
#include <bagnet/model.h>
#include <bagnet/ranking.h>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bagnet {

constexpr const char* kReportSchema = "bagnet-lens/report";
constexpr int kReportVersion = 2;  // 2: "maps" (raw maps written beside the report)
constexpr const char* kSummarySchema = "bagnet-lens/summary";
constexpr int kSummaryVersion = 1;

// Enough to reproduce the numbers of a report.
struct ModelFingerprint {
  std::string path, sha256;
  std::string architecture;        // arch_to_spec()
  std::string arch_name;           // preset name or "custom"
  int64_t receptive_field = 0, stride = 0, num_classes = 0;
  std::string torch_version, device;
  std::string precision = "float32";
  InputSpec preprocessing;
};

struct ImageInfo {
  int64_t index = 0;               // position in the run's inputs (datasets expanded): the canonical order
  std::string source;              // image path, or "<idx file>#<i>"
  std::string dataset;             // dataset description, empty for an image argument
  std::optional<int64_t> label;    // true class when known
  ImageTransform transform;        // original image -> model input; boxes go back through it
};

struct ReportContext {
  ModelFingerprint model;
  ImageInfo image;
  std::vector<std::string> class_names;  // index -> name, num_classes entries
};

struct ReportOptions {
  int64_t topk = 5;                // predictions listed and classes explained
  int64_t patches = 5;             // top positive / negative patches per explained class
  RankOptions suppression;         // overlap suppression for those lists (k is taken from `patches`)
  int64_t margin_patches = 5;      // errors: patches carrying most of the margin
  int64_t verify_occlusion = 0;    // > 0: mask this many patches and run the model again
  double tolerance = 1e-4;         // |total evidence - logit| <= tolerance * max(1, |logit|)
};

struct ReportPatch {
  int64_t row = 0, col = 0;        // map cell
  double value = 0;                // the class logit (or the margin, for margin patches)
  Box box;                         // model-input pixels
  std::array<double, 4> original{};  // original-image pixels: top, left, bottom, right
  double share = 0;                // margin patches: value / sum of all patch margins
};

struct ClassEvidence {
  int64_t cls = 0;
  std::string name;
  std::vector<std::string> roles;  // "top_k" (rank r), "predicted", "true"
  int64_t rank = 0;                // 1-based rank among all classes
  double logit = 0;                // classifier on the mean-pooled features (the official avg-pool path)
  double total_evidence = 0;       // mean of the patch logits (double accumulation)
  double difference = 0;           // |total_evidence - logit|
  bool matches = false;            // difference within tolerance
  int64_t positive_count = 0, negative_count = 0;
  double positive_sum = 0, negative_sum = 0;
  std::vector<ReportPatch> top_positive, top_negative;
};

struct Prediction {
  int64_t rank = 0, cls = 0;
  std::string name;
  double logit = 0, probability = 0;
};

// The smallest set of patches whose removal from the bag makes the true class's mean exceed the
// predicted class's (strictly; a tie does not flip). Exact: see docs/report-schema.md.
struct FlipSet {
  bool possible = false;
  int64_t size = 0;
  std::vector<ReportPatch> patches;      // values are margins
  double margin_after = 0;               // predicted - true mean over the remaining patches (< 0)
  int64_t top1_after = -1;               // arg max over all classes of the remaining bag
};

struct MarginSummary {
  double mean = 0, min = 0, max = 0, sum = 0;
  int64_t positive_count = 0, negative_count = 0;
  double positive_sum = 0, negative_sum = 0;
};

struct Decision {
  int64_t true_class = 0, predicted = 0;
  bool correct = false;
  int64_t true_rank = 0;                 // 1-based rank of the true class
  double true_logit = 0, predicted_logit = 0;
  // Errors only (correct == false):
  double margin = 0;                     // predicted - true logit
  MarginSummary margin_map;
  std::vector<ReportPatch> margin_patches;
  FlipSet flip;
};

struct OcclusionEntry {
  int64_t cls = 0;
  double before = 0, after = 0;          // logit on the image, on the masked image
  double bag_after = 0;                  // mean over the patches left after removing the masked ones
};

struct OcclusionCheck {
  std::string target;                    // "predicted": top patches of the predicted class; "margin"
  std::vector<ReportPatch> patches;      // masked with the image's mean colour
  std::vector<OcclusionEntry> classes;   // predicted class, and the true class when known
};

// Raw maps written beside a report (bagnet report --maps): one .npz per sample holding one
// [rows, cols] float32 array "class_<c>" per explained class.
struct MapFiles {
  std::string file;                 // relative to the report folder, e.g. "maps/000017.npz"
  std::vector<int64_t> classes;     // the explained classes, in the report's `classes` order
  int64_t rows = 0, cols = 0;
  int64_t stride = 0, patch = 0;    // pixels between cells, receptive field q
  bool dense = false;               // false: the native map (cell boxes as in `box_input`)
  double first_centre = 0;          // cell i's patch is centred on model-input coordinate first_centre + stride*i
};

struct Report {
  ModelFingerprint model;
  ReportOptions settings;
  ImageInfo image;
  int64_t map_rows = 0, map_cols = 0;
  std::vector<Prediction> predictions;
  std::vector<ClassEvidence> classes;
  std::optional<Decision> decision;
  std::vector<OcclusionCheck> occlusion;
  std::optional<MapFiles> maps;     // JSON "maps"; null when the maps were not written
  // Not part of the JSON: the native maps of the explained classes (`classes` order),
  // [K, map_rows, map_cols] float32 on the CPU, for writing them beside the report.
  torch::Tensor class_maps;
};

// Fills a fingerprint from a loaded model (SHA-256 from the checkpoint) and the device.
ModelFingerprint fingerprint(const LoadedModel& model, const InputSpec& preprocessing);

// What a report takes from the network for one image.
struct PatchEvidence {
  torch::Tensor maps;    // [C, H', W'] float32 on the CPU: every class's patch logits (the native map)
  torch::Tensor logits;  // [C] float64 on the CPU: the classifier on the mean-pooled features
};

// One network pass over `batch` [N, C, H, W] float32, normalised (on any device): N PatchEvidence.
// On the CPU an image's numbers do not depend on the other images of the batch (model.h), so
// reports built from a batch are byte-identical to reports built one image at a time.
std::vector<PatchEvidence> patch_evidence(BagNet& net, const torch::Tensor& batch);

// The report of one image: `input` [C, H, W] float32, normalised (on any device). Throws
// Error(InvalidArgument) for bad options or a label outside the classes.
Report build_report(BagNet& net, const torch::Tensor& input, const ReportContext& context,
                    const ReportOptions& options = {});
// The same from a pass already made (patch_evidence); `net` and `input` are used only for
// options.verify_occlusion, which runs the network again on masked copies of `input`.
Report build_report(BagNet& net, const torch::Tensor& input, const PatchEvidence& evidence, const ReportContext& context,
                    const ReportOptions& options = {});

// Bag-level flip set from the patch logits of the predicted and the true class ([H', W'] float)
// and of all classes `all` [C, H', W'] (for top1_after; may be undefined). Patch boxes are in
// model-input pixels (`original` is left zero). Exposed for tests.
FlipSet minimal_flip_set(const torch::Tensor& predicted, const torch::Tensor& truth, const torch::Tensor& all,
                         const MapGeometry& geometry);

nlohmann::json report_to_json(const Report& report);

// Summary of reports (JSON objects as report_to_json writes them) in canonical order: accuracy,
// confusion pairs by frequency, errors by margin, per-class counts. `inputs`: samples in the run.
nlohmann::json summarize_reports(const std::vector<nlohmann::json>& reports, int64_t inputs);

// The same summary built one report at a time (add in canonical order), so that its memory grows
// with the mistakes, not with the run.
class ReportSummary {
 public:
  // What the summary takes from one report: small, so that the report's JSON can be released where
  // it was made while the summary is built elsewhere.
  struct Entry {
    nlohmann::json model;                          // the report's "model"
    int64_t predictions = 0;                       // entries of "predictions"
    std::vector<std::pair<double, bool>> checks;   // each explained class's evidence check: difference, matches
    bool labelled = false;                         // the rest only when labelled
    int64_t true_class = 0, predicted = 0, true_rank = 0;
    std::string true_name, predicted_name;
    bool correct = false;
    nlohmann::json error;                          // a mistake's record in "errors"
  };
  // Throws Error(BadInput) for a report whose decision holds a non-integer class or rank.
  static Entry entry_of(const nlohmann::json& report);

  void add(const nlohmann::json& report) { add(entry_of(report)); }
  void add(const Entry& entry);
  nlohmann::json finish(int64_t inputs) const;

 private:
  int64_t reported_ = 0, labelled_ = 0, correct_ = 0, in_top_k_ = 0, matches_ = 0, explained_ = 0, top_k_ = 0;
  double max_difference_ = 0;
  nlohmann::json model_, errors_ = nlohmann::json::array();
  std::map<std::pair<int64_t, int64_t>, int64_t> confusions_;
  std::map<int64_t, std::string> names_;
  std::map<int64_t, std::pair<int64_t, int64_t>> per_class_;  // class -> (samples, correct)
};

// Rewrites reports.jsonl in image.index order, atomically and one report at a time (memory does
// not grow with the file), and calls `visit` with each report in that order. Throws
// Error(BadInput) for a sample reported twice or a damaged line.
void sort_report_lines(const std::string& path, const std::function<void(const nlohmann::json&)>& visit = {});

// reports.jsonl handling. read_report_lines parses every complete line (each must be a report of
// kReportSchema/kReportVersion, else Error(BadInput) naming the file and line); a last line without its
// newline (a killed writer) is dropped, and with `repair` the file is truncated before it. Any other
// unparsable line throws Error(BadInput) naming the file and line.
std::vector<nlohmann::json> read_report_lines(const std::string& path, bool repair);
// The same, one report at a time in file order (memory does not grow with the file): `visit` is
// called with each complete line's report. A missing file has no reports.
void scan_report_lines(const std::string& path, bool repair, const std::function<void(const nlohmann::json&)>& visit);
// Calls `visit` with each report of reports.jsonl in image.index order, one at a time, so memory
// does not grow with the file; the same checks as read_report_lines (no repair), and a sample
// reported twice throws Error(BadInput).
void visit_report_lines(const std::string& path, const std::function<void(const nlohmann::json&)>& visit);
// Sorts by image.index and writes atomically; throws Error(BadInput) for a repeated index.
void write_report_lines(const std::string& path, std::vector<nlohmann::json> reports);

}  // namespace bagnet
