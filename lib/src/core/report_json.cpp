// Report and summary as JSON (layout: docs/report-schema.json, docs/report-schema.md).
#include <bagnet/json_text.h>
#include <bagnet/error.h>
#include <bagnet/report.h>

#include <algorithm>
#include <map>
#include <utility>

namespace bagnet {

namespace {

using nlohmann::json;

json box_json(const Box& b) { return json::array({b.top, b.left, b.bottom(), b.right()}); }

json class_patch(const ReportPatch& p) {
  return {{"cell", {p.row, p.col}}, {"logit", p.value}, {"box_input", box_json(p.box)}, {"box_original", p.original}};
}

json margin_patch(const ReportPatch& p) {
  return {{"cell", {p.row, p.col}},
          {"margin", p.value},
          {"share", p.share},
          {"box_input", box_json(p.box)},
          {"box_original", p.original}};
}

template <typename F>
json patch_list(const std::vector<ReportPatch>& patches, F&& f) {
  json out = json::array();
  for (const auto& p : patches) out.push_back(f(p));
  return out;
}

json optional_size(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }

json model_json(const ModelFingerprint& m) {
  const auto& p = m.preprocessing;
  return {{"file", json_path(m.path)},
          {"sha256", m.sha256},
          {"architecture", m.architecture},
          {"arch_name", m.arch_name},
          {"receptive_field", m.receptive_field},
          {"stride", m.stride},
          {"num_classes", m.num_classes},
          {"torch_version", m.torch_version},
          {"device", m.device},
          {"precision", m.precision},
          {"preprocessing",
           {{"resize", optional_size(p.resize)}, {"crop", optional_size(p.crop)}, {"channels", p.channels},
            {"mean", p.mean}, {"std", p.std}}}};
}

std::string name_of(const Report& r, int64_t cls) {
  for (const auto& p : r.predictions)
    if (p.cls == cls) return p.name;
  for (const auto& c : r.classes)
    if (c.cls == cls) return c.name;
  return "";
}

}  // namespace

json report_to_json(const Report& r) {
  const auto& im = r.image;
  json image = {{"index", im.index},
                {"source", json_path(im.source)},
                {"dataset", im.dataset.empty() ? json(nullptr) : json(json_path(im.dataset))},
                {"label", im.label ? json(*im.label) : json(nullptr)},
                {"original_size", {im.transform.original_height, im.transform.original_width}},
                {"resized_size", {im.transform.resized_height, im.transform.resized_width}},
                {"crop_offset", {im.transform.crop_top, im.transform.crop_left}},
                {"input_size", {im.transform.input_height, im.transform.input_width}},
                {"map_size", {r.map_rows, r.map_cols}},
                {"patches", r.map_rows * r.map_cols}};

  json predictions = json::array();
  for (const auto& p : r.predictions)
    predictions.push_back(
        {{"rank", p.rank}, {"class", p.cls}, {"name", p.name}, {"logit", p.logit}, {"probability", p.probability}});

  json classes = json::array();
  for (const auto& c : r.classes)
    classes.push_back({{"class", c.cls},
                       {"name", c.name},
                       {"roles", c.roles},
                       {"rank", c.rank},
                       {"logit", c.logit},
                       {"total_evidence", c.total_evidence},
                       {"evidence_check", {{"difference", c.difference}, {"matches", c.matches}}},
                       {"positive", {{"count", c.positive_count}, {"sum", c.positive_sum}}},
                       {"negative", {{"count", c.negative_count}, {"sum", c.negative_sum}}},
                       {"top_positive", patch_list(c.top_positive, class_patch)},
                       {"top_negative", patch_list(c.top_negative, class_patch)}});

  json decision = nullptr;
  if (r.decision) {
    const Decision& d = *r.decision;
    decision = {{"true_class", d.true_class},
                {"true_name", name_of(r, d.true_class)},
                {"predicted", d.predicted},
                {"predicted_name", name_of(r, d.predicted)},
                {"correct", d.correct},
                {"true_rank", d.true_rank},
                {"true_logit", d.true_logit},
                {"predicted_logit", d.predicted_logit}};
    if (!d.correct) {
      const auto& s = d.margin_map;
      decision["margin"] = d.margin;
      decision["margin_map"] = {{"mean", s.mean},
                                {"sum", s.sum},
                                {"min", s.min},
                                {"max", s.max},
                                {"positive", {{"count", s.positive_count}, {"sum", s.positive_sum}}},
                                {"negative", {{"count", s.negative_count}, {"sum", s.negative_sum}}}};
      decision["margin_patches"] = patch_list(d.margin_patches, margin_patch);
      const FlipSet& f = d.flip;
      decision["flip_set"] = {{"exact_at", "bag"},
                              {"possible", f.possible},
                              {"size", f.possible ? json(f.size) : json(nullptr)},
                              {"margin_after", f.possible ? json(f.margin_after) : json(nullptr)},
                              {"top1_after", f.possible && f.top1_after >= 0 ? json(f.top1_after) : json(nullptr)},
                              {"patches", patch_list(f.patches, margin_patch)}};
    }
  }

  json occlusion = json::array();
  for (const auto& o : r.occlusion) {
    json entries = json::array();
    for (const auto& e : o.classes)
      entries.push_back({{"class", e.cls},
                         {"logit_before", e.before},
                         {"logit_after", e.after},
                         {"drop", e.before - e.after},
                         {"bag_logit_after", e.bag_after},
                         {"bag_drop", e.before - e.bag_after}});
    occlusion.push_back({{"target", o.target},
                         {"masked", static_cast<int64_t>(o.patches.size())},
                         {"fill", "image mean colour"},
                         {"patches", o.target == "margin" ? patch_list(o.patches, margin_patch)
                                                          : patch_list(o.patches, class_patch)},
                         {"classes", std::move(entries)}});
  }
  json maps = nullptr;
  if (r.maps) {
    const MapFiles& m = *r.maps;
    json names = json::array();
    for (const int64_t c : m.classes) names.push_back("class_" + std::to_string(c));
    maps = {{"file", m.file},  {"format", "npz"}, {"arrays", names}, {"classes", m.classes},
            {"size", {m.rows, m.cols}}, {"stride", m.stride}, {"patch", m.patch}, {"dense", m.dense},
            {"first_centre", m.first_centre}};
  }
  return {{"schema", kReportSchema},
          {"version", kReportVersion},
          {"model", model_json(r.model)},
          {"settings",
           {{"topk", r.settings.topk},
            {"patches", r.settings.patches},
            {"max_iou", r.settings.suppression.max_iou},
            {"min_distance", r.settings.suppression.min_distance},
            {"margin_patches", r.settings.margin_patches},
            {"verify_occlusion", r.settings.verify_occlusion},
            {"tolerance", r.settings.tolerance}}},
          // Moved: an initializer list copies the values it is given as lvalues, and these are
          // most of a report (the copies were a third of `report`'s time on Fashion-MNIST).
          {"image", std::move(image)},
          {"predictions", std::move(predictions)},
          {"classes", std::move(classes)},
          {"decision", std::move(decision)},
          {"occlusion", std::move(occlusion)},
          {"maps", std::move(maps)}};
}

ReportSummary::Entry ReportSummary::entry_of(const json& r) {
  Entry e;
  e.model = r.at("model");
  e.predictions = static_cast<int64_t>(r.at("predictions").size());
  for (const auto& c : r.at("classes"))
    e.checks.emplace_back(c.at("evidence_check").at("difference").get<double>(),
                          c.at("evidence_check").at("matches").get<bool>());
  const auto& d = r.at("decision");
  if (d.is_null()) return e;
  e.labelled = true;
  // Checked: a float where a class belongs would be an out-of-range conversion (undefined behaviour).
  e.true_class = json_integer(d.at("true_class"), "decision.true_class");
  e.predicted = json_integer(d.at("predicted"), "decision.predicted");
  e.true_rank = json_integer(d.at("true_rank"), "decision.true_rank");
  e.true_name = d.at("true_name").get<std::string>();
  e.predicted_name = d.at("predicted_name").get<std::string>();
  e.correct = d.at("correct").get<bool>();
  if (!e.correct)
    e.error = {{"index", r.at("image").at("index")},
               {"source", r.at("image").at("source")},
               {"true_class", e.true_class},
               {"predicted", e.predicted},
               {"margin", d.at("margin")},
               {"flip_set_size", d.at("flip_set").at("size")}};
  return e;
}

void ReportSummary::add(const Entry& e) {
  ++reported_;
  top_k_ = std::max<int64_t>(top_k_, e.predictions);
  if (model_.is_null()) model_ = e.model;
  for (const auto& [difference, matches] : e.checks) {
    ++explained_;
    max_difference_ = std::max(max_difference_, difference);
    matches_ += matches ? 1 : 0;
  }
  if (!e.labelled) return;
  ++labelled_;
  const int64_t t = e.true_class, p = e.predicted;
  names_[t] = e.true_name;
  names_[p] = e.predicted_name;
  auto& cls = per_class_[t];
  ++cls.first;
  if (e.true_rank <= e.predictions) ++in_top_k_;
  if (e.correct) {
    ++correct_;
    ++cls.second;
    return;
  }
  ++confusions_[{t, p}];
  errors_.push_back(e.error);
}

json ReportSummary::finish(int64_t inputs) const {
  json errors = errors_;
  std::stable_sort(errors.begin(), errors.end(), [](const json& a, const json& b) {
    const double ma = a.at("margin").get<double>(), mb = b.at("margin").get<double>();
    if (ma != mb) return ma > mb;
    return a.at("index").get<int64_t>() < b.at("index").get<int64_t>();
  });
  std::vector<std::pair<std::pair<int64_t, int64_t>, int64_t>> pairs(confusions_.begin(), confusions_.end());
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  auto name = [&](int64_t c) { const auto it = names_.find(c); return it == names_.end() ? std::string() : it->second; };
  json confusion_list = json::array();
  for (const auto& [key, count] : pairs)
    confusion_list.push_back({{"true_class", key.first},
                              {"true_name", name(key.first)},
                              {"predicted", key.second},
                              {"predicted_name", name(key.second)},
                              {"count", count}});
  json classes = json::array();
  for (const auto& [c, counts] : per_class_)
    classes.push_back({{"class", c},
                       {"name", name(c)},
                       {"samples", counts.first},
                       {"correct", counts.second},
                       {"accuracy", double(counts.second) / double(counts.first)}});
  auto fraction = [](int64_t a, int64_t b) { return b > 0 ? json(double(a) / double(b)) : json(nullptr); };
  return {{"schema", kSummarySchema},
          {"version", kSummaryVersion},
          {"model", model_},
          {"inputs", inputs},
          {"reported", reported_},
          {"labelled", labelled_},
          {"correct", correct_},
          {"accuracy", fraction(correct_, labelled_)},
          {"top_k", top_k_},
          {"top_k_accuracy", fraction(in_top_k_, labelled_)},
          {"evidence_check", {{"classes_checked", explained_}, {"matches", matches_}, {"max_difference", max_difference_}}},
          {"confusions", confusion_list},
          {"errors", errors},
          {"per_class", classes}};
}

json summarize_reports(const std::vector<json>& reports, int64_t inputs) {
  ReportSummary summary;
  for (const auto& r : reports) summary.add(r);
  return summary.finish(inputs);
}

}  // namespace bagnet
