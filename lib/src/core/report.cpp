// Building the evidence report of one image. All bag-level arithmetic is in double on the float32
// patch logits, so sums over hundreds of patches do not drift.
#include <bagnet/error.h>
#include <bagnet/report.h>
#include <bagnet/runtime.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace bagnet {

namespace {

ReportPatch to_report_patch(const PatchScore& p, const ReportContext& context) {
  ReportPatch r;
  r.row = p.row;
  r.col = p.col;
  r.value = p.value;
  r.box = p.box;
  const BoxF b = context.image.transform.to_original(p.box);
  r.original = {b.top, b.left, b.bottom, b.right};
  return r;
}

std::vector<ReportPatch> to_report_patches(const std::vector<PatchScore>& patches, const ReportContext& context) {
  std::vector<ReportPatch> out;
  for (const auto& p : patches) out.push_back(to_report_patch(p, context));
  return out;
}

// The mean over the patches left after removing `removed` (flat cell indices) from the bag, for
// every row of `flat` [C, n] double.
std::vector<double> bag_means_without(const torch::Tensor& flat, const std::vector<int64_t>& removed) {
  const int64_t n = flat.size(1);
  torch::Tensor sums = flat.sum(1);
  if (!removed.empty()) sums = sums - flat.index_select(1, torch::tensor(removed, torch::kLong)).sum(1);
  sums = sums / double(n - static_cast<int64_t>(removed.size()));
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
}

// Sum, mean, extremes and the counts and sums of the positive and negative entries of `values` [n]
// (plain loops: a report asks this of a few small maps, where tensor ops would cost more in
// dispatch than in arithmetic).
MarginSummary summarize_values(const double* values, int64_t n) {
  MarginSummary s;
  s.min = n > 0 ? values[0] : 0.0;
  s.max = s.min;
  for (int64_t i = 0; i < n; ++i) {
    const double v = values[i];
    if (v > 0) {
      ++s.positive_count;
      s.positive_sum += v;
    } else if (v < 0) {
      ++s.negative_count;
      s.negative_sum += v;
    }
    s.sum += v;
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  s.mean = s.sum / double(n);
  return s;
}

int64_t arg_max(const std::vector<double>& values) {
  // First maximum: ties go to the smaller class index, as torch's argmax does.
  return std::max_element(values.begin(), values.end()) - values.begin();
}

}  // namespace

ModelFingerprint fingerprint(const LoadedModel& model, const InputSpec& preprocessing) {
  ModelFingerprint f;
  f.path = model.path;
  f.sha256 = model.checkpoint.sha256;
  f.architecture = arch_to_spec(model.arch);
  f.arch_name = model.arch.name;
  f.receptive_field = receptive_field(model.arch);
  f.stride = total_stride(model.arch);
  f.num_classes = model.arch.num_classes;
  f.torch_version = torch_version();
  f.device = device_description(model.net->parameters().front().device());
  f.precision = precision_name(model.net->precision());
  f.preprocessing = preprocessing;
  return f;
}

FlipSet minimal_flip_set(const torch::Tensor& predicted, const torch::Tensor& truth, const torch::Tensor& all,
                         const MapGeometry& geometry) {
  BAGNET_CHECK(predicted.dim() == 2 && predicted.sizes() == truth.sizes() && predicted.size(0) == geometry.rows &&
                   predicted.size(1) == geometry.cols,
               ErrorKind::InvalidArgument, "flip set: expected two maps [", geometry.rows, ", ", geometry.cols,
               "], got ", predicted.sizes(), " and ", truth.sizes());
  const torch::Tensor m = (predicted.to(torch::kCPU, torch::kDouble) - truth.to(torch::kCPU, torch::kDouble))
                              .flatten()
                              .contiguous();
  const double* v = m.data_ptr<double>();
  const int64_t n = m.numel(), cols = geometry.cols;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  // tail[s] = sum of the margins left after removing the s largest. The true class beats the
  // predicted one over the n - s remaining patches iff tail[s] < 0; s = n is not allowed (no bag).
  std::vector<double> tail(static_cast<size_t>(n) + 1, 0.0);
  for (int64_t s = n - 1; s >= 0; --s) tail[s] = tail[s + 1] + v[order[s]];
  FlipSet flip;
  for (int64_t s = 0; s < n; ++s) {
    if (!(tail[s] < 0)) continue;
    flip.possible = true;
    flip.size = s;
    flip.margin_after = tail[s] / double(n - s);
    std::vector<int64_t> removed(order.begin(), order.begin() + s);
    for (const int64_t i : removed)
      flip.patches.push_back(ReportPatch{i / cols, i % cols, v[i], geometry.cell_box(i / cols, i % cols), {}, 0});
    if (all.defined())
      flip.top1_after = arg_max(bag_means_without(all.to(torch::kCPU, torch::kDouble).reshape({all.size(0), n}), removed));
    break;
  }
  return flip;
}

std::vector<PatchEvidence> patch_evidence(BagNet& net, const torch::Tensor& batch) {
  BAGNET_CHECK(batch.dim() == 4, ErrorKind::BadInput, "report input: expected [N, C, H, W], got ", batch.dim(),
               " dimensions");
  torch::NoGradGuard no_grad;
  const torch::Tensor features = net->features(batch.to(net->parameters().front().device()));
  const torch::Tensor maps = net->patch_logits(features).to(torch::kCPU).contiguous();  // [N, C, H', W'] float32
  // The official forward pools the features and then applies the classifier; being linear, it
  // must agree with the mean of the patch logits, which is what each report checks and records.
  const torch::Tensor pooled =
      net->patch_logits(features.mean({2, 3}, true)).flatten(1).to(torch::kCPU, torch::kDouble).contiguous();
  std::vector<PatchEvidence> out;
  for (int64_t i = 0; i < batch.size(0); ++i) out.push_back(PatchEvidence{maps[i], pooled[i]});
  return out;
}

Report build_report(BagNet& net, const torch::Tensor& input, const ReportContext& context, const ReportOptions& options) {
  BAGNET_CHECK(input.dim() == 3, ErrorKind::BadInput, "report input: expected [C, H, W], got ", input.dim(),
               " dimensions");
  return build_report(net, input, patch_evidence(net, input.unsqueeze(0)).front(), context, options);
}

Report build_report(BagNet& net, const torch::Tensor& input, const PatchEvidence& evidence, const ReportContext& context,
                    const ReportOptions& options) {
  BAGNET_CHECK(input.dim() == 3, ErrorKind::BadInput, "report input: expected [C, H, W], got ", input.dim(),
               " dimensions");
  BAGNET_CHECK(options.topk >= 1 && options.patches >= 0 && options.margin_patches >= 0 && options.verify_occlusion >= 0,
               ErrorKind::InvalidArgument, "report options: topk >= 1 and patch counts >= 0 required");
  const Arch& arch = net->arch();
  const int64_t num_classes = arch.num_classes;
  BAGNET_CHECK(static_cast<int64_t>(context.class_names.size()) == num_classes, ErrorKind::InvalidArgument,
               "report: ", context.class_names.size(), " class names for a model with ", num_classes, " classes");
  const auto& label = context.image.label;
  BAGNET_CHECK(!label || (*label >= 0 && *label < num_classes), ErrorKind::InvalidArgument, "report: true class ",
               label.value_or(0), " outside the model's ", num_classes, " classes");

  Report report;
  report.model = context.model;
  report.settings = options;
  report.image = context.image;
  const MapGeometry geometry = map_geometry(arch, input.size(1), input.size(2));
  report.map_rows = geometry.rows;
  report.map_cols = geometry.cols;
  const int64_t n = geometry.rows * geometry.cols;

  torch::NoGradGuard no_grad;
  const torch::Tensor& maps = evidence.maps;  // [C, H', W'] float32
  BAGNET_CHECK(maps.dim() == 3 && maps.size(0) == num_classes && maps.size(1) == geometry.rows &&
                   maps.size(2) == geometry.cols && evidence.logits.numel() == num_classes,
               ErrorKind::InvalidArgument, "report: patch evidence of shape ", maps.sizes(), " for a map [",
               num_classes, ", ", geometry.rows, ", ", geometry.cols, "]");
  const torch::Tensor pooled = evidence.logits.to(torch::kCPU, torch::kDouble).contiguous();
  const torch::Tensor flat = maps.to(torch::kDouble).reshape({num_classes, n}).contiguous();
  const torch::Tensor totals = flat.mean(1).contiguous();
  const double* total = totals.data_ptr<double>();
  const double* logit = pooled.data_ptr<double>();
  const torch::Tensor probabilities = torch::softmax(totals, 0).contiguous();

  // The bag-level decision: classes by total evidence, ties to the smaller index.
  std::vector<int64_t> order(static_cast<size_t>(num_classes));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return total[a] > total[b]; });
  std::vector<int64_t> rank_of(static_cast<size_t>(num_classes));
  for (int64_t r = 0; r < num_classes; ++r) rank_of[order[r]] = r + 1;
  const int64_t topk = std::min(options.topk, num_classes);
  for (int64_t r = 0; r < topk; ++r) {
    const int64_t c = order[r];
    report.predictions.push_back(
        Prediction{r + 1, c, context.class_names[c], total[c], probabilities.data_ptr<double>()[c]});
  }

  std::vector<int64_t> explained(order.begin(), order.begin() + topk);
  if (label && rank_of[*label] > topk) explained.push_back(*label);
  report.class_maps = maps.index_select(0, torch::tensor(explained, torch::kLong)).contiguous();
  RankOptions ranking = options.suppression;
  ranking.k = options.patches;
  ranking.only_signed = true;
  for (const int64_t c : explained) {
    ClassEvidence e;
    e.cls = c;
    e.name = context.class_names[c];
    e.rank = rank_of[c];
    if (e.rank <= topk) e.roles.push_back("top_k");
    if (e.rank == 1) e.roles.push_back("predicted");
    if (label && *label == c) e.roles.push_back("true");
    e.logit = logit[c];
    e.total_evidence = total[c];
    e.difference = std::abs(e.total_evidence - e.logit);
    e.matches = e.difference <= options.tolerance * std::max(1.0, std::abs(e.logit));
    const MarginSummary sums = summarize_values(flat.data_ptr<double>() + c * n, n);
    e.positive_count = sums.positive_count;
    e.negative_count = sums.negative_count;
    e.positive_sum = sums.positive_sum;
    e.negative_sum = sums.negative_sum;
    e.top_positive = to_report_patches(top_patches(maps[c], geometry, ranking, Sign::Positive), context);
    e.top_negative = to_report_patches(top_patches(maps[c], geometry, ranking, Sign::Negative), context);
    report.classes.push_back(std::move(e));
  }

  const int64_t predicted = order[0];
  if (label) {
    Decision d;
    d.true_class = *label;
    d.predicted = predicted;
    d.correct = predicted == *label;
    d.true_rank = rank_of[*label];
    d.true_logit = total[*label];
    d.predicted_logit = total[predicted];
    if (!d.correct) {
      const torch::Tensor margin = (flat[predicted] - flat[*label]).contiguous();  // [n] double
      d.margin = total[predicted] - total[*label];
      d.margin_map = summarize_values(margin.data_ptr<double>(), n);
      const MarginSummary& s = d.margin_map;
      RankOptions carriers;
      carriers.k = options.margin_patches;
      d.margin_patches =
          to_report_patches(top_patches(margin.view({geometry.rows, geometry.cols}), geometry, carriers, Sign::Positive), context);
      for (auto& p : d.margin_patches) p.share = s.sum != 0 ? p.value / s.sum : 0.0;
      d.flip = minimal_flip_set(maps[predicted], maps[*label], maps, geometry);
      for (auto& p : d.flip.patches) {
        p = to_report_patch(PatchScore{p.row, p.col, p.value, p.box}, context);
        p.share = s.sum != 0 ? p.value / s.sum : 0.0;
      }
    }
    report.decision = d;
  }

  if (options.verify_occlusion > 0) {
    // Mask with the image's own mean colour, so the masked area carries as little signal as a
    // constant can; the bag-level prediction assumes the masked patches simply leave the bag.
    const int64_t k = std::min(options.verify_occlusion, n);
    std::vector<std::pair<std::string, std::vector<PatchScore>>> targets;
    RankOptions strongest;
    strongest.k = k;
    strongest.only_signed = false;
    targets.emplace_back("predicted", top_patches(maps[predicted], geometry, strongest, Sign::Positive));
    if (report.decision && !report.decision->correct)
      targets.emplace_back("margin", top_patches(maps[predicted].to(torch::kDouble) - maps[*label].to(torch::kDouble),
                                                 geometry, strongest, Sign::Positive));
    std::vector<int64_t> watched{predicted};
    if (label && *label != predicted) watched.push_back(*label);
    const torch::Tensor batch = input.unsqueeze(0).to(net->parameters().front().device());
    const torch::Tensor mean_colour = batch.mean({2, 3}, true);
    for (const auto& [target, patches] : targets) {
      torch::Tensor masked = batch.clone();
      std::vector<int64_t> removed;
      for (const auto& p : patches) {
        using torch::indexing::Slice;
        masked.index_put_({Slice(), Slice(), Slice(p.box.top, p.box.bottom()), Slice(p.box.left, p.box.right())},
                          mean_colour.expand({1, batch.size(1), p.box.height, p.box.width}));
        removed.push_back(p.row * geometry.cols + p.col);
      }
      const torch::Tensor after = net->forward(masked).flatten().to(torch::kCPU, torch::kDouble);
      const std::vector<double> bag = bag_means_without(flat, removed);
      OcclusionCheck check;
      check.target = target;
      check.patches = to_report_patches(patches, context);
      if (target == "margin")
        for (auto& p : check.patches) p.share = report.decision->margin_map.sum != 0 ? p.value / report.decision->margin_map.sum : 0.0;
      for (const int64_t c : watched) check.classes.push_back(OcclusionEntry{c, total[c], after[c].item<double>(), bag[c]});
      report.occlusion.push_back(std::move(check));
    }
  }
  return report;
}

}  // namespace bagnet
