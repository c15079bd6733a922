// One image through two BagNets (diff.h): the decisions from the image logits, and for a changed
// decision the margin maps of both models on a common dense grid and their difference.
#include <bagnet/diff.h>
#include <bagnet/error.h>
#include <bagnet/evidence.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace bagnet {

namespace {

// Strides at which `arch` gives dense maps: map_strides() without the native one (listed last).
std::vector<int64_t> dense_only_strides(const Arch& arch) {
  std::vector<int64_t> strides = map_strides(arch);
  if (strides.size() > 1) strides.pop_back();
  return strides;
}

// [rows, cols] margin map[a] - map[b] of `net` at `stride` (dense: cell (i, j) centred on pixel
// (stride*i, stride*j)).
torch::Tensor dense_margin(BagNet& net, const torch::Tensor& input, int64_t a, int64_t b, int64_t stride) {
  DenseOptions options;
  options.stride = stride;
  options.classes = {a, b};
  const torch::Tensor maps = compute_dense_evidence(net, input, options).logits[0];  // [2, rows, cols]
  return (maps[0] - maps[1]).contiguous();
}

// The strongest cells of `difference` of one sign, with boxes of side `patch` centred on their
// pixels and clipped to the input. Ranking goes through top_patches (ties and suppression as for
// every other patch list) with a geometry whose cell boxes are the dense boxes shifted by
// (patch - 1) / 2, which leaves overlaps, and so the suppression, unchanged.
std::vector<ShiftCell> strongest_cells(const torch::Tensor& difference, int64_t stride, int64_t patch, int64_t height,
                                       int64_t width, const DiffOptions& options, Sign sign) {
  MapGeometry g;
  g.rows = difference.size(0);
  g.cols = difference.size(1);
  g.stride = stride;
  g.patch = patch;
  g.input_height = (g.rows - 1) * stride + patch;
  g.input_width = (g.cols - 1) * stride + patch;
  RankOptions rank;
  rank.k = options.cells;
  rank.max_iou = options.max_iou;
  const int64_t half = (patch - 1) / 2;
  std::vector<ShiftCell> cells;
  for (const PatchScore& p : top_patches(difference, g, rank, sign)) {
    const int64_t top = std::max<int64_t>(0, p.box.top - half), left = std::max<int64_t>(0, p.box.left - half);
    const int64_t bottom = std::min(height, p.box.bottom() - half), right = std::min(width, p.box.right() - half);
    cells.push_back({p.row, p.col, p.value, Box{top, left, bottom - top, right - left}});
  }
  return cells;
}

}  // namespace

bool gives_dense_map(const Arch& arch, int64_t stride) {
  const auto strides = dense_only_strides(arch);
  return std::find(strides.begin(), strides.end(), stride) != strides.end();
}

int64_t common_dense_stride(const Arch& a, const Arch& b) {
  int64_t best = 1;
  for (const int64_t s : dense_only_strides(a))
    if (gives_dense_map(b, s)) best = std::max(best, s);
  return best;
}

const char* change_name(DecisionChange change) {
  switch (change) {
    case DecisionChange::Same: return "same";
    case DecisionChange::Fixed: return "fixed";
    case DecisionChange::Introduced: return "introduced";
    case DecisionChange::OtherMistake: return "other_mistake";
    case DecisionChange::Changed: return "changed";
  }
  return "?";
}

ImageDiff diff_image(BagNet& a, BagNet& b, const torch::Tensor& input_a, const torch::Tensor& input_b,
                     std::optional<int64_t> label, const DiffOptions& options) {
  BAGNET_CHECK(input_a.dim() == 4 && input_b.dim() == 4 && input_a.size(0) == 1 && input_b.size(0) == 1,
               ErrorKind::InvalidArgument, "diff inputs: expected [1, C, H, W] each, got ", input_a.sizes(), " and ",
               input_b.sizes());
  BAGNET_CHECK(input_a.size(2) == input_b.size(2) && input_a.size(3) == input_b.size(3), ErrorKind::InvalidArgument,
               "diff inputs: the two models must see the same pixels, got ", input_a.size(2), "x", input_a.size(3),
               " and ", input_b.size(2), "x", input_b.size(3));
  const int64_t classes = a->arch().num_classes;
  BAGNET_CHECK(b->arch().num_classes == classes, ErrorKind::InvalidArgument, "diff: the models have ", classes,
               " and ", b->arch().num_classes, " classes");
  BAGNET_CHECK(gives_dense_map(a->arch(), options.stride) && gives_dense_map(b->arch(), options.stride),
               ErrorKind::InvalidArgument, "diff: map stride ", options.stride,
               " is not a dense stride of both models (the largest they share is ",
               common_dense_stride(a->arch(), b->arch()), ")");
  BAGNET_CHECK(options.cells >= 0, ErrorKind::InvalidArgument, "diff: cells must be >= 0, got ", options.cells);
  BAGNET_CHECK(!label || (*label >= 0 && *label < classes), ErrorKind::InvalidArgument, "diff: label ", *label,
               " outside the ", classes, " classes");

  torch::NoGradGuard no_grad;
  const torch::Tensor logits_a = a->forward(input_a).to(torch::kCPU, torch::kDouble)[0];
  const torch::Tensor logits_b = b->forward(input_b).to(torch::kCPU, torch::kDouble)[0];
  ImageDiff d;
  d.label = label;
  d.predicted_a = logits_a.argmax().item<int64_t>();
  d.predicted_b = logits_b.argmax().item<int64_t>();
  d.margin_a = (logits_a[d.predicted_a] - logits_a[d.predicted_b]).item<double>();
  d.margin_b = (logits_b[d.predicted_a] - logits_b[d.predicted_b]).item<double>();
  d.probability_a = torch::softmax(logits_a, 0)[d.predicted_a].item<double>();
  d.probability_b = torch::softmax(logits_b, 0)[d.predicted_b].item<double>();
  if (d.predicted_a == d.predicted_b) return d;
  if (!label) d.change = DecisionChange::Changed;
  else if (*label == d.predicted_a) d.change = DecisionChange::Fixed;
  else if (*label == d.predicted_b) d.change = DecisionChange::Introduced;
  else d.change = DecisionChange::OtherMistake;

  EvidenceShift s;
  s.to_class = d.predicted_a;
  s.from_class = d.predicted_b;
  s.stride = options.stride;
  s.patch = std::max(receptive_field(a->arch()), receptive_field(b->arch()));
  s.margin_a = dense_margin(a, input_a, s.to_class, s.from_class, s.stride);
  s.margin_b = dense_margin(b, input_b, s.to_class, s.from_class, s.stride);
  s.difference = (s.margin_a - s.margin_b).contiguous();
  const int64_t h = input_a.size(2), w = input_a.size(3);
  s.toward_a = strongest_cells(s.difference, s.stride, s.patch, h, w, options, Sign::Positive);
  s.toward_b = strongest_cells(s.difference, s.stride, s.patch, h, w, options, Sign::Negative);
  const torch::Tensor diff64 = s.difference.to(torch::kDouble);
  s.positive_sum = diff64.clamp_min(0).sum().item<double>();
  s.negative_sum = diff64.clamp_max(0).sum().item<double>();
  d.shift = std::move(s);
  return d;
}

double mcnemar_p_value(int64_t fixed, int64_t introduced) {
  const int64_t n = fixed + introduced;
  if (n == 0) return 1.0;
  const int64_t k = std::min(fixed, introduced);
  // P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (n can be in the tens of thousands).
  double tail = 0;
  for (int64_t i = 0; i <= k; ++i)
    tail += std::exp(std::lgamma(double(n) + 1) - std::lgamma(double(i) + 1) - std::lgamma(double(n - i) + 1) -
                     double(n) * std::log(2.0));
  return std::min(1.0, 2 * tail);
}

DiffSummary::DiffSummary(int64_t num_classes) : num_classes_(num_classes), classes_(static_cast<size_t>(num_classes)) {}

void DiffSummary::add(const ImageDiff& d) {
  ++images_;
  ++changes_[d.change];
  if (d.changed()) ++moves_[{d.predicted_b, d.predicted_a}];
  if (!d.label) return;
  ++labelled_;
  ClassCounts& c = classes_.at(static_cast<size_t>(*d.label));
  ++c.samples;
  const bool right_a = d.predicted_a == *d.label, right_b = d.predicted_b == *d.label;
  right_a_ += right_a;
  right_b_ += right_b;
  c.right_a += right_a;
  c.right_b += right_b;
  c.fixed += d.change == DecisionChange::Fixed;
  c.introduced += d.change == DecisionChange::Introduced;
}

nlohmann::json DiffSummary::to_json(const std::vector<std::string>& names) const {
  using nlohmann::json;
  const auto ratio = [](int64_t num, int64_t den) { return den > 0 ? json(double(num) / double(den)) : json(nullptr); };
  const auto count = [&](DecisionChange c) {
    const auto it = changes_.find(c);
    return it == changes_.end() ? int64_t{0} : it->second;
  };
  const auto name = [&](int64_t c) { return c < static_cast<int64_t>(names.size()) ? names[c] : "class_" + std::to_string(c); };
  json j;
  j["images"] = images_;
  j["labelled"] = labelled_;
  j["accuracy"] = {{"weights", ratio(right_a_, labelled_)}, {"against", ratio(right_b_, labelled_)},
                   {"change", labelled_ > 0 ? json(double(right_a_ - right_b_) / double(labelled_)) : json(nullptr)}};
  const int64_t fixed = count(DecisionChange::Fixed), introduced = count(DecisionChange::Introduced);
  j["decisions"] = {{"same", count(DecisionChange::Same)}, {"fixed", fixed}, {"introduced", introduced},
                    {"other_mistake", count(DecisionChange::OtherMistake)}, {"changed_unlabelled", count(DecisionChange::Changed)}};
  j["mcnemar"] = {{"discordant", fixed + introduced}, {"p_value", mcnemar_p_value(fixed, introduced)}};
  json per_class = json::array();
  for (int64_t c = 0; c < num_classes_; ++c) {
    const ClassCounts& k = classes_[static_cast<size_t>(c)];
    if (k.samples == 0) continue;
    per_class.push_back({{"class", c}, {"name", name(c)}, {"samples", k.samples}, {"weights_accuracy", ratio(k.right_a, k.samples)},
                         {"against_accuracy", ratio(k.right_b, k.samples)},
                         {"change", double(k.right_a - k.right_b) / double(k.samples)}, {"fixed", k.fixed},
                         {"introduced", k.introduced}});
  }
  j["per_class"] = per_class;
  std::vector<std::pair<std::pair<int64_t, int64_t>, int64_t>> moves(moves_.begin(), moves_.end());
  std::stable_sort(moves.begin(), moves.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
  json moved = json::array();
  for (const auto& [pair, n] : moves)
    moved.push_back({{"from", pair.first}, {"from_name", name(pair.first)}, {"to", pair.second}, {"to_name", name(pair.second)},
                     {"count", n}});
  j["moves"] = moved;
  return j;
}

}  // namespace bagnet
