// Composing heatmap figures: paper style (map + Canny edges), overlay, panels, titles, colour bar.
#include <bagnet/error.h>
#include <bagnet/render.h>

#include "text_layout.h"

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace bagnet {
namespace {

const cv::Vec3b kHatchBase(228, 228, 228);
const cv::Vec3b kHatchLine(150, 150, 150);
const cv::Scalar kInk(25, 25, 25);
const cv::Scalar kPaper(255, 255, 255);

// Text sized for the figure: Hershey glyphs are about 22 px tall at scale 1.
struct Font {
  double scale;
  int thickness, height;
  explicit Font(int tile_height) {
    height = std::max(12, static_cast<int>(std::lround(tile_height / 18.0)));
    scale = height / 22.0;
    thickness = height >= 20 ? 2 : 1;
  }
  int width(const std::string& text) const {
    int baseline = 0;
    return cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &baseline).width;
  }
  void put(cv::Mat& img, const std::string& text, cv::Point bottom_left) const {
    cv::putText(img, text, bottom_left, cv::FONT_HERSHEY_SIMPLEX, scale, kInk, thickness, cv::LINE_AA);
  }
};

// The BagNet paper's pictures are of 224 px inputs; its edge parameters were chosen at that size.
constexpr double kPaperInputSize = 224;

cv::Mat to_bytes(const cv::Mat& photo) {
  cv::Mat out;
  photo.convertTo(out, CV_8UC3, 255.0);
  return out;
}

void outline_crop(cv::Mat& tile, const ImageTransform& t, int zoom) {
  BoxF r = t.input_region();
  r.top *= zoom;
  r.left *= zoom;
  r.bottom *= zoom;
  r.right *= zoom;
  const bool whole = std::lround(r.top) <= 0 && std::lround(r.left) <= 0 && std::lround(r.bottom) >= tile.rows &&
                     std::lround(r.right) >= tile.cols;
  if (whole) return;
  const int thickness = std::max(1, static_cast<int>(std::lround(std::max(tile.rows, tile.cols) / 250.0)));
  const cv::Point a(int(std::lround(r.left)), int(std::lround(r.top)));
  const cv::Point b(int(std::lround(r.right)) - 1, int(std::lround(r.bottom)) - 1);
  // Dark outside, light inside: visible on dark photos as on light heatmaps.
  cv::rectangle(tile, a, b, kInk, thickness, cv::LINE_8);
  const cv::Point step(thickness, thickness);
  cv::rectangle(tile, a + step, b - step, cv::Scalar(255, 255, 255), thickness, cv::LINE_8);
}

// Heatmap tile in the paper's style: colours, then edges darkened at `alpha`. Not over pixels no
// patch sees (NaN values): darkened hatching would look like hatching of another shade.
cv::Mat paper_tile(const cv::Mat& colours, const cv::Mat& edges, const cv::Mat& values, double alpha) {
  cv::Mat out = colours.clone();
  for (int r = 0; r < out.rows; ++r) {
    cv::Vec3b* px = out.ptr<cv::Vec3b>(r);
    const uchar* e = edges.ptr<uchar>(r);
    const float* v = values.ptr<float>(r);
    for (int c = 0; c < out.cols; ++c)
      if (e[c] && !std::isnan(v[c])) px[c] = cv::Vec3b(cv::saturate_cast<uchar>(px[c][0] * (1 - alpha)),
                                  cv::saturate_cast<uchar>(px[c][1] * (1 - alpha)),
                                  cv::saturate_cast<uchar>(px[c][2] * (1 - alpha)));
  }
  return out;
}

// The colour bar with its ticks and, when `unit` is not empty, the unit written upwards beside the
// tick labels (as matplotlib labels a colour bar), so that it takes no room from the titles.
cv::Mat draw_colorbar(const Colormap& cmap, const ColorScale& scale, int height, const Font& font,
                      const std::string& unit) {
  const int bar_width = std::max(12, height / 16);
  const std::vector<double> ticks = colorbar_ticks(scale, 7);
  int label_width = 0;
  for (double v : ticks) label_width = std::max(label_width, font.width(format_tick(v)));
  const int tick_length = std::max(3, bar_width / 3);
  const int pad = font.height / 2 + 1;
  cv::Mat strip(height, bar_width + tick_length + 4 + label_width + 2, CV_8UC3, kPaper);
  const int top = pad, bar_height = height - 2 * pad;
  for (int r = 0; r < bar_height; ++r) {
    const double value = scale.high - (double(r) + 0.5) / double(bar_height) * (scale.high - scale.low);
    const cv::Vec3b colour = cmap.rgb(scale.position(value));
    for (int c = 0; c < bar_width; ++c) strip.at<cv::Vec3b>(top + r, c) = colour;
  }
  cv::rectangle(strip, cv::Point(0, top), cv::Point(bar_width - 1, top + bar_height - 1), kInk, 1);
  for (double v : ticks) {
    const int y = top + static_cast<int>(std::lround((scale.high - v) / (scale.high - scale.low) * (bar_height - 1)));
    cv::line(strip, cv::Point(bar_width, y), cv::Point(bar_width + tick_length - 1, y), kInk, 1);
    font.put(strip, format_tick(v), cv::Point(bar_width + tick_length + 3, y + font.height / 2));
  }
  if (unit.empty()) return strip;
  const int length = std::min(font.width(unit) + 4, height);
  cv::Mat label(font.height + 8, length, CV_8UC3, kPaper);
  font.put(label, unit, cv::Point(2, font.height + 2));
  cv::rotate(label, label, cv::ROTATE_90_COUNTERCLOCKWISE);
  cv::Mat out(height, strip.cols + 2 + label.cols, CV_8UC3, kPaper);
  strip.copyTo(out(cv::Rect(0, 0, strip.cols, strip.rows)));
  label.copyTo(out(cv::Rect(strip.cols + 2, (height - label.rows) / 2, label.cols, label.rows)));
  return out;
}

}  // namespace

cv::Mat Figure::bgr() const {
  cv::Mat out;
  cv::cvtColor(rgb, out, cv::COLOR_RGB2BGR);
  return out;
}

cv::Mat paper_edges(const cv::Mat& photo, double scale) {
  BAGNET_CHECK(!photo.empty() && photo.type() == CV_32FC3, ErrorKind::InvalidArgument,
               "edges: expected an RGB float image (CV_32FC3)");
  BAGNET_CHECK(scale > 0 && scale <= 1, ErrorKind::InvalidArgument, "edge scale must be in (0, 1], got ", scale);
  cv::Mat grey;
  cv::transform(photo, grey, cv::Matx13f(1.f / 3, 1.f / 3, 1.f / 3));
  cv::Mat small = grey;
  const int h = std::max(1, static_cast<int>(std::lround(photo.rows * scale)));
  const int w = std::max(1, static_cast<int>(std::lround(photo.cols * scale)));
  if (h != photo.rows || w != photo.cols) {
    // Anti-aliasing as scikit-image's rescale does: Gaussian of sigma (1/scale - 1)/2 first.
    const double sigma = (1.0 / scale - 1.0) / 2.0;
    cv::Mat blurred;
    if (sigma > 0)
      cv::GaussianBlur(grey, blurred, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT);
    else
      blurred = grey;
    cv::resize(blurred, small, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
  }
  cv::Mat smooth;
  cv::GaussianBlur(small, smooth, cv::Size(0, 0), 1.0, 1.0, cv::BORDER_REFLECT);
  // Canny's thresholds apply to the Sobel gradient of intensities in [0, 1] (0.1 and 0.2); the
  // gradients are scaled into int16 with headroom so no precision is lost to 8-bit rounding.
  const double gain = 255.0 * 8.0;
  cv::Mat dx, dy, dx16, dy16;
  cv::Sobel(smooth, dx, CV_32F, 1, 0, 3, 1, 0, cv::BORDER_REFLECT);
  cv::Sobel(smooth, dy, CV_32F, 0, 1, 3, 1, 0, cv::BORDER_REFLECT);
  dx.convertTo(dx16, CV_16S, gain);
  dy.convertTo(dy16, CV_16S, gain);
  cv::Mat edges;
  cv::Canny(dx16, dy16, edges, 0.1 * gain, 0.2 * gain, true);
  // The paper leaves the outer 5 pixels of its 112 px edge maps empty (border artefacts); smaller
  // edge maps keep the same fraction, so that a small map is not cleared down to its middle.
  const int border = std::clamp(static_cast<int>(std::lround(5.0 * std::max(edges.rows, edges.cols) / 112.0)), 1, 5);
  if (edges.rows > 2 * border && edges.cols > 2 * border) {
    cv::Mat keep = cv::Mat::zeros(edges.size(), CV_8UC1);
    keep(cv::Rect(border, border, edges.cols - 2 * border, edges.rows - 2 * border)).setTo(255);
    edges &= keep;
  } else {
    edges.setTo(0);
  }
  cv::Mat full;
  cv::resize(edges, full, photo.size(), 0, 0, cv::INTER_NEAREST);
  return full;
}

cv::Mat colorize(const cv::Mat& values, const Colormap& cmap, const ColorScale& scale) {
  BAGNET_CHECK(!values.empty() && values.type() == CV_32FC1, ErrorKind::InvalidArgument,
               "colorize: expected a float value image (CV_32FC1)");
  cv::Mat out(values.size(), CV_8UC3);
  for (int r = 0; r < values.rows; ++r) {
    const float* v = values.ptr<float>(r);
    cv::Vec3b* px = out.ptr<cv::Vec3b>(r);
    for (int c = 0; c < values.cols; ++c) {
      if (std::isnan(v[c]))
        px[c] = ((r + c) % 8 < 2) ? kHatchLine : kHatchBase;
      else
        px[c] = cmap.rgb(scale.position(v[c]));
    }
  }
  return out;
}

Figure render_figure(const cv::Mat& original, const ImageTransform& transform, const std::vector<MapTile>& tiles,
                     const MapLayout& layout, const RenderOptions& options) {
  BAGNET_CHECK(!tiles.empty(), ErrorKind::InvalidArgument, "render_figure: no maps given");
  BAGNET_CHECK(options.edge_alpha >= 0 && options.edge_alpha <= 1 && options.overlay_alpha >= 0 &&
                   options.overlay_alpha <= 1,
               ErrorKind::InvalidArgument, "render: alphas must be in [0, 1]");
  BAGNET_CHECK(options.style == Style::Panel || tiles.size() == 1, ErrorKind::InvalidArgument,
               "render: only the panel style shows several maps, got ", tiles.size());
  const Colormap& cmap = find_colormap(options.colormap);

  std::vector<torch::Tensor> maps;
  bool non_negative = true;
  for (const auto& t : tiles) {
    maps.push_back(t.map.detach().to(torch::kCPU, torch::kFloat));
    non_negative = non_negative && maps.back().min().item<float>() >= 0;
  }
  const double clip = options.clip ? *options.clip : abs_percentile(maps, options.percentile);
  Figure figure;
  figure.scale = make_scale(clip, cmap, non_negative);

  const cv::Mat photo = photo_in_frame(original, transform, options.frame);
  const bool outline = options.frame == Frame::Original;
  // Small pictures are enlarged before colouring, so that hatching and text are drawn at the
  // displayed resolution while every map/photo pixel becomes a zoom x zoom block.
  const int zoom = std::max(1, options.min_display / std::max(1, std::max(photo.rows, photo.cols)));
  figure.zoom = zoom;
  auto enlarge = [zoom](const cv::Mat& m) {
    if (zoom == 1 || m.empty()) return m;
    cv::Mat out;
    cv::resize(m, out, cv::Size(), zoom, zoom, cv::INTER_NEAREST);
    return out;
  };
  cv::Mat edges;
  if (options.style != Style::Overlay && options.edge_alpha > 0) {
    // Edges are found on the photo as displayed. Their resolution is edge_scale x the model
    // input's (so the density on a large original follows what the model saw), but at least
    // edge_scale x 224 px across the figure: the paper's 0.5 on its 224 px inputs gave 112 px edge
    // maps, and the same rule on a 28 px input would give a 14 px map whose cleared border leaves
    // a grey block in the middle. The enlargement for the edges is bilinear so that contours of
    // small inputs come out as thin lines, not as pixel-sized blocks that read like map cells.
    const double input_per_display =
        (options.frame == Frame::Original ? double(transform.resized_height) / double(transform.original_height)
                                          : 1.0) /
        zoom;
    const double longer = double(std::max(photo.rows, photo.cols) * zoom);
    const double scale = std::min(1.0, options.edge_scale * std::max(input_per_display, kPaperInputSize / longer));
    cv::Mat shown = photo;
    if (zoom > 1) cv::resize(photo, shown, cv::Size(), zoom, zoom, cv::INTER_LINEAR);
    edges = paper_edges(shown, scale);
  }

  std::vector<cv::Mat> pictures;
  std::vector<std::string> titles;
  const cv::Mat photo_bytes = enlarge(to_bytes(photo));
  if (options.style == Style::Panel) {
    pictures.push_back(photo_bytes.clone());
    titles.push_back(options.frame == Frame::Original ? "image (original)" : "image (model input)");
  }
  for (size_t k = 0; k < tiles.size(); ++k) {
    const cv::Mat values = enlarge(sample_map(maps[k], layout, options.upsample, options.frame, transform));
    const cv::Mat colours = colorize(values, cmap, figure.scale);
    cv::Mat picture;
    if (options.style == Style::Overlay)
      cv::addWeighted(photo_bytes, 1 - options.overlay_alpha, colours, options.overlay_alpha, 0, picture);
    else
      picture = edges.empty() ? colours : paper_tile(colours, edges, values, options.edge_alpha);
    pictures.push_back(picture);
    titles.push_back(tiles[k].title);
  }
  if (outline)
    for (auto& p : pictures) outline_crop(p, transform, zoom);

  const int tile_h = pictures[0].rows, tile_w = pictures[0].cols;
  // Text sized by the shorter side, so that a tall narrow tile does not get letters too big for
  // its width.
  const Font font(std::max(std::min(tile_h, tile_w), 160));
  const int gap = std::max(4, font.height / 2);
  cv::Mat bar;
  if (options.colorbar) bar = draw_colorbar(cmap, figure.scale, tile_h, font, options.colorbar_unit);
  const std::string footer = "clip " + format_tick(figure.scale.clip) +
                             (options.clip_note.empty() ? std::string() : " (" + options.clip_note + ")");
  const int footer_h = options.colorbar ? font.height + gap + 2 : 0;
  const int n = static_cast<int>(pictures.size());
  const int bar_x = gap + n * (tile_w + gap);
  // Wide enough for the clip note under narrow pictures.
  const int width = std::max(gap + n * (tile_w + gap) + (bar.empty() ? 0 : bar.cols + gap),
                             bar.empty() ? 0 : font.width(footer) + 2 * gap);
  // Titles may have several lines ('\n'), and a line wider than its tile wraps (at spaces where
  // possible) instead of being cut: the end of a title is often what tells two pictures apart.
  // The last tile's title may also use the room above the colour bar. Every tile reserves the
  // tallest title.
  const detail::TextWidth measure = [&font](const std::string& text) { return font.width(text); };
  std::vector<std::vector<std::string>> title_lines;
  size_t line_count = 1;
  for (int k = 0; k < n; ++k) {
    const std::string& t = titles[size_t(k)];
    const int room = k + 1 == n ? width - (gap + k * (tile_w + gap)) - gap : tile_w;
    std::vector<std::string> lines;
    size_t start = 0;
    auto add = [&](const std::string& line) {
      for (auto& part : detail::wrap_text(line, room, measure)) lines.push_back(part);
    };
    for (size_t end; (end = t.find('\n', start)) != std::string::npos; start = end + 1) add(t.substr(start, end - start));
    add(t.substr(start));
    line_count = std::max(line_count, lines.size());
    title_lines.push_back(lines);
  }
  const int line_h = font.height + gap / 2 + 2;
  const int title_h = options.titles ? static_cast<int>(line_count) * line_h + gap / 2 : 0;
  cv::Mat canvas(title_h + tile_h + footer_h + gap, width, CV_8UC3, kPaper);
  for (int k = 0; k < n; ++k) {
    const int x = gap + k * (tile_w + gap);
    figure.tiles.emplace_back(x, title_h, tile_w, tile_h);
    pictures[k].copyTo(canvas(figure.tiles.back()));
    if (options.titles)
      for (size_t i = 0; i < title_lines[k].size(); ++i)
        font.put(canvas, title_lines[k][i], cv::Point(x, gap / 2 + int(i + 1) * line_h - gap / 2));
  }
  if (!bar.empty()) {
    bar.copyTo(canvas(cv::Rect(bar_x, title_h, bar.cols, bar.rows)));
    figure.colorbar = cv::Rect(bar_x, title_h, bar.cols, bar.rows);
    const int text_w = font.width(footer);
    font.put(canvas, footer, cv::Point(std::max(gap, width - gap - text_w), title_h + tile_h + font.height + gap / 2));
  }
  figure.rgb = canvas;
  return figure;
}

}  // namespace bagnet
