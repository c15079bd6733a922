#pragma once
// Small line plots and tables as pictures (OpenCV part), for `bagnet compare`: curves with error
// bars on linear axes, a legend, and a 2 x 2 table of counts.
//
//   bagnet::Plot p;  p.title = "Deletion";  p.x_label = "fraction deleted";
//   p.series.push_back({"BagNet", {0, 0.5, 1}, {0.9, 0.4, 0.1}});
//   cv::Mat png = bagnet::draw_plot(p);      // CV_8UC3 BGR
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <string>
#include <utility>
#include <vector>

namespace bagnet {

struct PlotSeries {
  std::string name;
  std::vector<double> x, y;
  std::vector<double> error;   // half-widths of error bars (empty: none); NaN values are skipped
  bool dashed = false;         // besides colour, dashes tell a baseline apart (colour-blind readers)
};

struct Plot {
  std::string title, x_label, y_label;
  std::vector<PlotSeries> series;
  bool log_x = false;          // log2 x axis (patch counts 1, 2, 4, ...)
  int width = 640, height = 420;
};

// Draws `plot`; axes span the data (y from 0 when all values are >= 0). Throws Error(InvalidArgument)
// for a series whose x and y sizes differ.
cv::Mat draw_plot(const Plot& plot);

// A titled 2 x 2 table: rows and columns labelled, a number and its share in each cell.
cv::Mat draw_table(const std::string& title, const std::vector<std::string>& row_labels,
                   const std::vector<std::string>& col_labels, const std::vector<std::vector<double>>& values,
                   const std::string& note);

// The plots of a compare.json document: (file name, picture) for sensitivity.png, deletion.png,
// insertion.png and errors.png.
std::vector<std::pair<std::string, cv::Mat>> compare_plots(const nlohmann::json& compare);

}  // namespace bagnet
