// Aggregating image comparisons into the compare.json document (docs/compare.md).
#include <bagnet/compare.h>
#include <bagnet/error.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace bagnet {

namespace {

// Curves held per image: deletion / insertion x (bagnet, other, random-order bagnet, random-order other).
enum Curve { DelBagnet, DelOther, DelRandomBagnet, DelRandomOther, InsBagnet, InsOther, InsRandomBagnet, InsRandomOther };

const std::vector<double>& curve_of(const ImageComparison& c, int which) {
  switch (which) {
    case DelBagnet: return c.deletion_bagnet;
    case DelOther: return c.deletion_other;
    case DelRandomBagnet: return c.deletion_random_bagnet;
    case DelRandomOther: return c.deletion_random_other;
    case InsBagnet: return c.insertion_bagnet;
    case InsOther: return c.insertion_other;
    case InsRandomBagnet: return c.insertion_random_bagnet;
    default: return c.insertion_random_other;
  }
}

constexpr size_t kDeviationsKept = 100000;  // quantiles from a seeded reservoir beyond this many pairs

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

double quantile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double pos = p * double(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

}  // namespace

void CompareSummary::Moments::add(double v) {
  ++n;
  sum += v;
  sum_sq += v * v;
}
double CompareSummary::Moments::mean() const { return n ? sum / double(n) : NAN; }
double CompareSummary::Moments::standard_error() const {
  if (n < 2) return NAN;
  const double m = mean();
  const double variance = std::max(0.0, (sum_sq - double(n) * m * m) / double(n - 1));
  return std::sqrt(variance / double(n));
}

CompareSummary::CompareSummary(const CompareOptions& options) : options_(options) {
  const size_t k = options.ks.size();
  for (auto* v : {&other_inf_, &other_rand_, &bagnet_inf_, &bagnet_rand_, &bagnet_bag_}) v->resize(k);
  for (int64_t s = 0; s <= options.steps; ++s) fractions_.push_back(double(s) / double(options.steps));
  for (auto& c : curves_) c.resize(fractions_.size());
}

void CompareSummary::add(const ImageComparison& image) {
  ++images_;
  if (image.bagnet_predicted == image.other_predicted) ++same_prediction_;
  if (image.label) {
    ++labelled_;
    const bool b = image.bagnet_predicted == *image.label, o = image.other_predicted == *image.label;
    bagnet_right_ += b;
    other_right_ += o;
    if (b && o) ++both_right_;
    if (!b && o) ++only_bagnet_wrong_;
    if (b && !o) ++only_other_wrong_;
    if (!b && !o) {
      ++both_wrong_;
      if (image.bagnet_predicted == image.other_predicted) ++same_mistake_;
    }
  }
  BAGNET_CHECK(image.sensitivity.size() == options_.ks.size() && image.fractions.size() == fractions_.size(),
               ErrorKind::InvalidArgument, "CompareSummary: an image compared with other options");
  for (size_t i = 0; i < image.sensitivity.size(); ++i) {
    const auto& d = image.sensitivity[i];
    if (!d.measured) continue;
    other_inf_[i].add(d.other_informative);
    other_rand_[i].add(d.other_random);
    bagnet_inf_[i].add(d.bagnet_informative);
    bagnet_rand_[i].add(d.bagnet_random);
    bagnet_bag_[i].add(d.bagnet_bag);
  }
  for (const auto& p : image.pairs) {
    const double other_dev = p.other_joint - p.other_sum, bagnet_dev = p.bagnet_joint - p.bagnet_sum;
    pair_other_dev_.add(other_dev);
    pair_bagnet_dev_.add(bagnet_dev);
    if (std::abs(p.other_sum) > 0) pair_other_rel_.add(std::abs(other_dev) / std::abs(p.other_sum));
    bagnet_max_abs_dev_ = std::max(bagnet_max_abs_dev_, std::abs(bagnet_dev));
    if (other_deviations_.size() < kDeviationsKept) {
      other_deviations_.push_back(other_dev);
    } else {  // reservoir sampling, seeded by the count so that reruns agree
      std::mt19937_64 rng(options_.seed ^ static_cast<uint64_t>(pair_other_dev_.n));
      const auto slot = std::uniform_int_distribution<int64_t>(0, pair_other_dev_.n - 1)(rng);
      if (slot < static_cast<int64_t>(kDeviationsKept)) other_deviations_[static_cast<size_t>(slot)] = other_dev;
    }
  }
  for (int which = 0; which < 8; ++which) {
    const auto& curve = curve_of(image, which);
    for (size_t s = 0; s < curve.size(); ++s) curves_[which][s].add(curve[s]);
    auc_[which].add(curve_area(image.fractions, curve));
  }
}

nlohmann::json CompareSummary::to_json() const {
  using nlohmann::json;
  json j;
  j["images"] = images_;
  j["labelled"] = labelled_;
  const double n = double(labelled_);
  const double pb = labelled_ ? bagnet_right_ / n : NAN, po = labelled_ ? other_right_ / n : NAN;
  j["accuracy"] = {{"bagnet", number_or_null(pb)}, {"other", number_or_null(po)}};
  // Cohen's kappa of the two correctness variables: agreement beyond what independent errors give.
  const double observed = labelled_ ? (both_right_ + both_wrong_) / n : NAN;
  const double chance = pb * po + (1 - pb) * (1 - po);
  j["error_agreement"] = {{"both_right", both_right_},
                          {"only_bagnet_wrong", only_bagnet_wrong_},
                          {"only_other_wrong", only_other_wrong_},
                          {"both_wrong", both_wrong_},
                          {"expected_both_wrong", number_or_null(n * (1 - pb) * (1 - po))},
                          {"kappa", number_or_null(chance < 1 ? (observed - chance) / (1 - chance) : NAN)},
                          {"shared_mistakes_same_class", same_mistake_},
                          {"shared_mistakes_same_class_fraction", number_or_null(both_wrong_ ? double(same_mistake_) / both_wrong_ : NAN)},
                          {"same_prediction_fraction", number_or_null(images_ ? double(same_prediction_) / images_ : NAN)}};
  json sens = {{"k", options_.ks}, {"fill", options_.fill == MaskFill::Mean ? "mean" : "blur"}};
  for (const char* key : {"images", "informative_drop", "informative_drop_se", "random_drop", "random_drop_se", "ratio",
                          "bagnet_informative_drop", "bagnet_random_drop", "bagnet_bag_drop"})
    sens[key] = json::array();
  for (size_t i = 0; i < options_.ks.size(); ++i) {
    sens["images"].push_back(other_inf_[i].n);
    sens["informative_drop"].push_back(number_or_null(other_inf_[i].mean()));
    sens["informative_drop_se"].push_back(number_or_null(other_inf_[i].standard_error()));
    sens["random_drop"].push_back(number_or_null(other_rand_[i].mean()));
    sens["random_drop_se"].push_back(number_or_null(other_rand_[i].standard_error()));
    sens["ratio"].push_back(number_or_null(other_inf_[i].mean() / other_rand_[i].mean()));
    sens["bagnet_informative_drop"].push_back(number_or_null(bagnet_inf_[i].mean()));
    sens["bagnet_random_drop"].push_back(number_or_null(bagnet_rand_[i].mean()));
    sens["bagnet_bag_drop"].push_back(number_or_null(bagnet_bag_[i].mean()));
  }
  j["feature_sensitivity"] = sens;
  json quantiles = json::object();
  for (double p : {0.05, 0.25, 0.5, 0.75, 0.95}) {
    char key[8];
    std::snprintf(key, sizeof key, "p%02d", static_cast<int>(std::lround(p * 100)));
    quantiles[key] = number_or_null(quantile(other_deviations_, p));
  }
  j["interactions"] = {{"pairs", pair_other_dev_.n},
                       {"other", {{"mean_deviation", number_or_null(pair_other_dev_.mean())},
                                  {"deviation_se", number_or_null(pair_other_dev_.standard_error())},
                                  {"deviation_quantiles", quantiles},
                                  {"mean_relative_abs_deviation", number_or_null(pair_other_rel_.mean())}}},
                       {"bagnet", {{"mean_deviation", number_or_null(pair_bagnet_dev_.mean())},
                                   {"max_abs_deviation", pair_bagnet_dev_.n ? json(bagnet_max_abs_dev_) : json(nullptr)}}}};
  auto curves = [&](int first) {
    json c = {{"fractions", fractions_}};
    const char* names[4] = {"bagnet", "other", "random_bagnet", "random_other"};
    for (int i = 0; i < 4; ++i) {
      json mean = json::array();
      for (const auto& m : curves_[first + i]) mean.push_back(number_or_null(m.mean()));
      c[names[i]] = mean;
    }
    c["bagnet_auc"] = number_or_null(auc_[first + 0].mean());
    c["other_auc"] = number_or_null(auc_[first + 1].mean());
    c["bagnet_random_auc"] = number_or_null(auc_[first + 2].mean());
    c["random_auc"] = number_or_null(auc_[first + 3].mean());
    c["other_auc_se"] = number_or_null(auc_[first + 1].standard_error());
    c["random_auc_se"] = number_or_null(auc_[first + 3].standard_error());
    return c;
  };
  j["deletion"] = curves(DelBagnet);
  j["insertion"] = curves(InsBagnet);
  return j;
}

}  // namespace bagnet
