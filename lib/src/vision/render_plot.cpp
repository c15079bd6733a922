// Line plots and a 2 x 2 table drawn with OpenCV (plot.h), and the plots of a compare.json.
#include <bagnet/error.h>
#include <bagnet/plot.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace bagnet {

namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kInk(30, 30, 30), kGrid(225, 225, 225), kPaper(255, 255, 255);
// Okabe-Ito colours (BGR): distinguishable with the common colour-vision deficiencies.
const cv::Scalar kColours[] = {{178, 114, 0}, {0, 94, 213}, {115, 158, 0}, {167, 121, 204}, {66, 228, 240}, {233, 180, 86}};

int text_width(const std::string& s, double scale) {
  int base = 0;
  return cv::getTextSize(s, kFont, scale, 1, &base).width;
}

void put(cv::Mat& img, const std::string& s, cv::Point at, double scale, const cv::Scalar& colour = kInk, int thickness = 1) {
  cv::putText(img, s, at, kFont, scale, colour, thickness, cv::LINE_AA);
}

std::string tick_text(double v) {
  char buf[32];
  if (v == 0) return "0";
  if (std::abs(v) >= 1000 || std::abs(v) < 0.01) std::snprintf(buf, sizeof buf, "%.1e", v);
  else std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// About five round tick values covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi) {
  const double span = hi - lo;
  const double raw = span / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

void dashed_line(cv::Mat& img, cv::Point a, cv::Point b, const cv::Scalar& colour, int thickness) {
  const double length = std::hypot(b.x - a.x, b.y - a.y);
  const int pieces = std::max(1, static_cast<int>(length / 6));
  for (int i = 0; i < pieces; i += 2) {
    const double t0 = double(i) / pieces, t1 = double(std::min(i + 1, pieces)) / pieces;
    cv::line(img, {static_cast<int>(a.x + t0 * (b.x - a.x)), static_cast<int>(a.y + t0 * (b.y - a.y))},
             {static_cast<int>(a.x + t1 * (b.x - a.x)), static_cast<int>(a.y + t1 * (b.y - a.y))}, colour, thickness, cv::LINE_AA);
  }
}

std::vector<double> numbers(const nlohmann::json& values) {
  std::vector<double> out;
  for (const auto& v : values) out.push_back(v.is_number() ? v.get<double>() : NAN);
  return out;
}

}  // namespace

cv::Mat draw_plot(const Plot& plot) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto fx = [&](double x) { return plot.log_x ? std::log2(x) : x; };
  for (const auto& s : plot.series) {
    BAGNET_CHECK(s.x.size() == s.y.size() && (s.error.empty() || s.error.size() == s.y.size()), ErrorKind::InvalidArgument,
                 "plot series '", s.name, "': ", s.x.size(), " x values, ", s.y.size(), " y values, ", s.error.size(), " errors");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (plot.log_x && s.x[i] <= 0)) continue;
      const double e = s.error.empty() || !std::isfinite(s.error[i]) ? 0 : s.error[i];
      x0 = std::min(x0, fx(s.x[i]));
      x1 = std::max(x1, fx(s.x[i]));
      y0 = std::min(y0, s.y[i] - e);
      y1 = std::max(y1, s.y[i] + e);
    }
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (y0 >= 0) y0 = 0;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  const double pad = (y1 - y0) * 0.05;
  y1 += pad;
  if (y0 < 0) y0 -= pad;

  // The legend wraps onto as many rows as it needs below the x label.
  std::vector<int> legend_row(plot.series.size(), 0);
  int rows = 1;
  for (int k = 0, x = 70; k < static_cast<int>(plot.series.size()); ++k) {
    const int item = 30 + text_width(plot.series[k].name, 0.42) + 24;
    if (x + item > plot.width - 10 && x > 70) {
      ++rows;
      x = 70;
    }
    legend_row[k] = rows - 1;
    x += item;
  }
  cv::Mat img(plot.height + 20 * (rows - 1), plot.width, CV_8UC3, kPaper);
  const int left = 70, right = plot.width - 20, top = 58, bottom = plot.height - 92;
  auto px = [&](double x) { return static_cast<int>(left + (fx(x) - x0) / (x1 - x0) * (right - left)); };
  auto py = [&](double y) { return static_cast<int>(bottom - (y - y0) / (y1 - y0) * (bottom - top)); };
  double title_scale = 0.6;  // shrunk until the title fits the width
  while (title_scale > 0.35 && text_width(plot.title, title_scale) > plot.width - 20) title_scale -= 0.05;
  put(img, plot.title, {10, 24}, title_scale, kInk, 1);
  for (double t : nice_ticks(y0, y1)) {
    cv::line(img, {left, py(t)}, {right, py(t)}, t == 0 ? cv::Scalar(150, 150, 150) : kGrid, 1);
    const std::string s = tick_text(t);
    put(img, s, {left - 8 - text_width(s, 0.4), py(t) + 5}, 0.4);
  }
  std::vector<double> xticks;
  if (plot.log_x) {
    for (double e = std::ceil(x0); e <= x1 + 1e-9; e += 1) xticks.push_back(std::pow(2.0, e));
  } else {
    xticks = nice_ticks(x0, x1);
  }
  for (double t : xticks) {
    cv::line(img, {px(t), bottom}, {px(t), bottom + 4}, kInk, 1);
    const std::string s = tick_text(t);
    put(img, s, {px(t) - text_width(s, 0.4) / 2, bottom + 20}, 0.4);
  }
  cv::rectangle(img, {left, top}, {right, bottom}, kInk, 1);
  put(img, plot.x_label, {(left + right - text_width(plot.x_label, 0.45)) / 2, bottom + 42}, 0.45);
  put(img, plot.y_label, {10, top - 12}, 0.4);

  int legend_x = left, legend_at = 0;
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const auto& s = plot.series[k];
    const cv::Scalar colour = kColours[k % 6];
    cv::Point previous(-1, -1);
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (plot.log_x && s.x[i] <= 0)) {
        previous = {-1, -1};
        continue;
      }
      const cv::Point p(px(s.x[i]), py(s.y[i]));
      if (previous.x >= 0) {
        if (s.dashed) dashed_line(img, previous, p, colour, 2);
        else cv::line(img, previous, p, colour, 2, cv::LINE_AA);
      }
      if (!s.error.empty() && std::isfinite(s.error[i]) && s.error[i] > 0) {
        const int a = py(s.y[i] - s.error[i]), b = py(s.y[i] + s.error[i]);
        cv::line(img, {p.x, a}, {p.x, b}, colour, 1, cv::LINE_AA);
        cv::line(img, {p.x - 4, a}, {p.x + 4, a}, colour, 1, cv::LINE_AA);
        cv::line(img, {p.x - 4, b}, {p.x + 4, b}, colour, 1, cv::LINE_AA);
      }
      cv::circle(img, p, 3, colour, cv::FILLED, cv::LINE_AA);
      previous = p;
    }
    // Legend below the x label: a line sample (dashed for baselines) and the name.
    if (legend_row[k] != legend_at) {
      legend_at = legend_row[k];
      legend_x = left;
    }
    const int y = plot.height - 18 + 20 * legend_row[k];
    if (s.dashed) dashed_line(img, {legend_x, y - 4}, {legend_x + 24, y - 4}, colour, 2);
    else cv::line(img, {legend_x, y - 4}, {legend_x + 24, y - 4}, colour, 2, cv::LINE_AA);
    put(img, s.name, {legend_x + 30, y}, 0.42);
    legend_x += 30 + text_width(s.name, 0.42) + 24;
  }
  return img;
}

cv::Mat draw_table(const std::string& title, const std::vector<std::string>& row_labels,
                   const std::vector<std::string>& col_labels, const std::vector<std::vector<double>>& values,
                   const std::string& note) {
  const int cell_w = 170, cell_h = 64, label_w = 150, top = 80;
  const int width = label_w + cell_w * static_cast<int>(col_labels.size()) + 20;
  const int height = top + cell_h * static_cast<int>(row_labels.size()) + 50;
  cv::Mat img(height, width, CV_8UC3, kPaper);
  put(img, title, {12, 28}, 0.6);
  double total = 0;
  for (const auto& row : values)
    for (double v : row) total += v;
  for (size_t c = 0; c < col_labels.size(); ++c)
    put(img, col_labels[c], {label_w + static_cast<int>(c) * cell_w + 8, top - 12}, 0.45);
  for (size_t r = 0; r < row_labels.size(); ++r) {
    const int y = top + static_cast<int>(r) * cell_h;
    put(img, row_labels[r], {12, y + cell_h / 2 + 5}, 0.45);
    for (size_t c = 0; c < col_labels.size(); ++c) {
      const int x = label_w + static_cast<int>(c) * cell_w;
      const double v = r < values.size() && c < values[r].size() ? values[r][c] : 0;
      const double share = total > 0 ? v / total : 0;
      // Darker for larger shares, from white; text switches to white on dark cells.
      const int shade = static_cast<int>(255 - 150 * share);
      cv::rectangle(img, {x, y}, {x + cell_w, y + cell_h}, cv::Scalar(255, shade, shade), cv::FILLED);
      cv::rectangle(img, {x, y}, {x + cell_w, y + cell_h}, kInk, 1);
      char text[64];
      std::snprintf(text, sizeof text, "%.0f  (%.1f%%)", v, 100 * share);
      put(img, text, {x + 10, y + cell_h / 2 + 6}, 0.5, kInk, 1);
    }
  }
  put(img, note, {12, height - 18}, 0.42);
  return img;
}

std::vector<std::pair<std::string, cv::Mat>> compare_plots(const nlohmann::json& j) {
  std::vector<std::pair<std::string, cv::Mat>> out;
  const auto& s = j.at("feature_sensitivity");
  Plot sens;
  sens.title = "Logit drop of the explained class when k patches are masked (" + s.at("fill").get<std::string>() + " fill)";
  sens.x_label = "patches masked (k, non-overlapping)";
  sens.y_label = "logit drop (mean +- s.e.)";
  sens.log_x = true;
  const std::vector<double> ks = numbers(s.at("k"));
  sens.series.push_back({"other: BagNet's most informative", ks, numbers(s.at("informative_drop")), numbers(s.at("informative_drop_se"))});
  sens.series.push_back({"other: random patches", ks, numbers(s.at("random_drop")), numbers(s.at("random_drop_se")), true});
  sens.series.push_back({"BagNet itself: most informative", ks, numbers(s.at("bagnet_informative_drop")), {}});
  out.emplace_back("sensitivity.png", draw_plot(sens));
  for (const char* name : {"deletion", "insertion"}) {
    const auto& c = j.at(name);
    Plot p;
    const bool deletion = std::string(name) == "deletion";
    const std::string fill = s.at("fill").get<std::string>() == "blur" ? "its blur" : "its mean colour";
    p.title = std::string(deletion ? "Deletion (to " + fill + ")" : "Insertion (from " + fill + ")") +
              " in the order of the BagNet's evidence";
    p.x_label = deletion ? "fraction of the image deleted (patch centres, best first)" : "fraction of the image inserted (patch centres, best first)";
    p.y_label = "probability of the class (mean)";
    const std::vector<double> f = numbers(c.at("fractions"));
    auto auc = [&](const char* key) {
      char buf[32];
      std::snprintf(buf, sizeof buf, " (AUC %.3f)", c.at(key).is_number() ? c.at(key).get<double>() : NAN);
      return std::string(buf);
    };
    p.series.push_back({"other" + auc("other_auc"), f, numbers(c.at("other")), {}});
    p.series.push_back({"other, random order" + auc("random_auc"), f, numbers(c.at("random_other")), {}, true});
    p.series.push_back({"BagNet" + auc("bagnet_auc"), f, numbers(c.at("bagnet")), {}});
    out.emplace_back(std::string(name) + ".png", draw_plot(p));
  }
  const auto& e = j.at("error_agreement");
  const double expected = e.at("expected_both_wrong").is_number() ? e.at("expected_both_wrong").get<double>() : NAN;
  char note[160];
  std::snprintf(note, sizeof note, "both wrong if errors were independent: %.1f; Cohen's kappa %.3f", expected,
                e.at("kappa").is_number() ? e.at("kappa").get<double>() : NAN);
  out.emplace_back("errors.png",
                   draw_table("Errors of the BagNet and the other model", {"BagNet right", "BagNet wrong"},
                              {"other right", "other wrong"},
                              {{e.at("both_right").get<double>(), e.at("only_other_wrong").get<double>()},
                               {e.at("only_bagnet_wrong").get<double>(), e.at("both_wrong").get<double>()}},
                              note));
  return out;
}

}  // namespace bagnet
