#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/patch_grid.h>

#include "text_layout.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace bagnet {

namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kScale = 0.38;
constexpr int kLine = 14, kPad = 4;
// A caption line longer than a tile wraps onto at most this many lines; beyond that its middle is
// left out. Names differ at their start (an index) as often as at their end (a counter), and the
// rank and logit at the start of a caption must never be cut.
constexpr size_t kMaxLinesPerCaption = 3;

int text_width(const std::string& text, double scale) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, 1, &baseline).width;
}

cv::Mat to_bgr8(const cv::Mat& crop) {
  cv::Mat bgr;
  if (crop.channels() == 1)
    cv::cvtColor(crop, bgr, cv::COLOR_GRAY2BGR);
  else
    cv::cvtColor(crop, bgr, cv::COLOR_RGB2BGR);
  bgr.convertTo(bgr, CV_8UC3, 255.0);
  return bgr;
}

}  // namespace

cv::Mat crop_box(const cv::Mat& image, const BoxF& box) {
  const int top = std::max(0, static_cast<int>(std::floor(box.top)));
  const int left = std::max(0, static_cast<int>(std::floor(box.left)));
  const int bottom = std::min(image.rows, static_cast<int>(std::ceil(box.bottom)));
  const int right = std::min(image.cols, static_cast<int>(std::ceil(box.right)));
  BAGNET_CHECK(bottom > top && right > left, ErrorKind::InvalidArgument, "crop: box [", box.top, ", ", box.left, ", ",
               box.bottom, ", ", box.right, ") does not overlap the ", image.rows, "x", image.cols, " image");
  return image(cv::Rect(left, top, right - left, bottom - top)).clone();
}

cv::Mat render_patch_grid(const std::vector<GridTile>& tiles, const GridOptions& options) {
  BAGNET_CHECK(!tiles.empty(), ErrorKind::InvalidArgument, "patch grid: no tiles");
  BAGNET_CHECK(options.tile >= 16 && options.columns >= 1, ErrorKind::InvalidArgument,
               "patch grid: tile >= 16 and columns >= 1 required, got ", options.tile, " and ", options.columns);
  const int cell_w = options.tile + 2 * kPad;
  const detail::TextWidth caption_width = [](const std::string& t) { return text_width(t, kScale); };
  std::vector<std::vector<std::string>> captions;  // the wrapped lines of each tile
  size_t lines = 0;
  for (const auto& t : tiles) {
    std::vector<std::string> wrapped;
    for (const auto& line : t.caption)
      for (auto& part : detail::wrap_text(line, cell_w - 4, caption_width, kMaxLinesPerCaption)) wrapped.push_back(part);
    lines = std::max(lines, wrapped.size());
    captions.push_back(std::move(wrapped));
  }
  const int cell_h = options.tile + 2 * kPad + static_cast<int>(lines) * kLine;
  const int columns = std::min<int>(options.columns, static_cast<int>(tiles.size()));
  const int rows = (static_cast<int>(tiles.size()) + columns - 1) / columns;
  const int width = columns * cell_w;
  const std::vector<std::string> title =
      options.title.empty() ? std::vector<std::string>{}
                            : detail::wrap_text(options.title, width - 2 * kPad,
                                                [](const std::string& t) { return text_width(t, kScale + 0.05); });
  const int title_h = title.empty() ? 0 : static_cast<int>(title.size()) * kLine + 2 * kPad;
  cv::Mat canvas(title_h + rows * cell_h, width, CV_8UC3, cv::Scalar(255, 255, 255));
  for (size_t l = 0; l < title.size(); ++l)
    cv::putText(canvas, title[l], {kPad, kPad + static_cast<int>(l + 1) * kLine - 3}, kFont, kScale + 0.05,
                cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  for (size_t i = 0; i < tiles.size(); ++i) {
    const int x0 = static_cast<int>(i % columns) * cell_w, y0 = title_h + static_cast<int>(i / columns) * cell_h;
    const cv::Mat& crop = tiles[i].crop;
    BAGNET_CHECK(!crop.empty() && (crop.type() == CV_32FC3 || crop.type() == CV_32FC1), ErrorKind::InvalidArgument,
                 "patch grid: tile ", i, " is not a float RGB or grey image");
    const double s = double(options.tile) / std::max(crop.rows, crop.cols);
    const int w = std::max(1, static_cast<int>(std::lround(crop.cols * s)));
    const int h = std::max(1, static_cast<int>(std::lround(crop.rows * s)));
    cv::Mat scaled;
    cv::resize(to_bgr8(crop), scaled, {w, h}, 0, 0, cv::INTER_NEAREST);
    const int ox = x0 + kPad + (options.tile - w) / 2, oy = y0 + kPad + (options.tile - h) / 2;
    scaled.copyTo(canvas(cv::Rect(ox, oy, w, h)));
    cv::rectangle(canvas, cv::Rect(ox - 1, oy - 1, w + 2, h + 2), cv::Scalar(160, 160, 160), 1);
    for (size_t l = 0; l < captions[i].size(); ++l)
      cv::putText(canvas, captions[i][l],
                  {x0 + 2, y0 + 2 * kPad + options.tile + static_cast<int>(l + 1) * kLine - 3}, kFont, kScale,
                  cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  }
  return canvas;
}

}  // namespace bagnet
