// Heatmap rendering: colour maps and scales, colour-bar ticks, where cells land on pixels
// (patch-aligned and smooth, model-input and original frames), uncovered pixels, global scales,
// and a golden picture.
#include <bagnet/diff_view.h>
#include <bagnet/error.h>
#include <bagnet/patch_grid.h>
#include <bagnet/render.h>

#include "vision/text_layout.h"

#include <doctest/doctest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace bagnet;

namespace {

bool close_rgb(const cv::Vec3b& a, const cv::Vec3b& b, int tolerance = 1) {
  for (int c = 0; c < 3; ++c)
    if (std::abs(int(a[c]) - int(b[c])) > tolerance) return false;
  return true;
}

// The cell whose patch centre is nearest to model-input coordinate y (ties to the later cell),
// found by brute force rather than by the renderer's formula.
int64_t nearest_cell_at(double y, const MapLayout& l, int64_t cells) {
  int64_t best = 0;
  double best_distance = 1e300;
  for (int64_t i = 0; i < cells; ++i) {
    const double d = std::abs(y - (l.first_centre + double(l.stride * i)));
    if (d <= best_distance) {
      best = i;
      best_distance = d;
    }
  }
  return best;
}

int64_t nearest_cell(int64_t p, const MapLayout& l, int64_t cells) { return nearest_cell_at(double(p) + 0.5, l, cells); }

torch::Tensor index_map(int64_t rows, int64_t cols) {
  return (torch::arange(rows, torch::kFloat).view({-1, 1}) * 1000 + torch::arange(cols, torch::kFloat).view({1, -1}))
      .contiguous();
}

bool is_hatch(const cv::Vec3b& px) {
  return px == cv::Vec3b(228, 228, 228) || px == cv::Vec3b(150, 150, 150);
}

// A deterministic photo: a bright disc and a bar on a darker gradient (gives Canny edges).
cv::Mat synthetic_photo(int h, int w) {
  cv::Mat photo(h, w, CV_32FC3);
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) {
      const float g = 0.2f + 0.2f * float(c) / float(w);
      photo.at<cv::Vec3f>(r, c) = cv::Vec3f(g, g * 0.9f, g * 0.8f);
    }
  cv::circle(photo, cv::Point(w / 3, h / 2), h / 5, cv::Scalar(0.9, 0.8, 0.3), cv::FILLED, cv::LINE_8);
  cv::rectangle(photo, cv::Point(w * 3 / 5, h / 5), cv::Point(w * 4 / 5, h * 4 / 5), cv::Scalar(0.1, 0.3, 0.8),
                cv::FILLED);
  return photo;
}

ImageTransform identity(int64_t h, int64_t w) {
  ImageTransform t;
  t.original_height = t.resized_height = t.input_height = h;
  t.original_width = t.resized_width = t.input_width = w;
  return t;
}

}  // namespace

TEST_CASE("colour maps follow their control points") {
  const Colormap& rdbu = find_colormap("rdbu_r");
  CHECK(rdbu.diverging);
  CHECK(rdbu.rgb(0.0) == cv::Vec3b(0x05, 0x30, 0x61));   // strongest "against": dark blue
  CHECK(rdbu.rgb(1.0) == cv::Vec3b(0x67, 0x00, 0x1f));   // strongest "for": dark red
  CHECK(rdbu.rgb(0.5) == cv::Vec3b(0xf7, 0xf7, 0xf7));   // zero evidence: near white
  CHECK(rdbu.rgb(-3.0) == rdbu.rgb(0.0));                 // clamped
  // A quarter of the way between the first two stops (#053061 -> #2166ac).
  CHECK(close_rgb(rdbu.rgb(0.025), cv::Vec3b(12, 62, 116)));
  const Colormap& puor = find_colormap("PuOr_r");
  CHECK(puor.diverging);
  CHECK(puor.rgb(0.0) == cv::Vec3b(0x2d, 0x00, 0x4b));
  CHECK(puor.rgb(1.0) == cv::Vec3b(0x7f, 0x3b, 0x08));
  CHECK_FALSE(find_colormap("viridis").diverging);
  CHECK(find_colormap("viridis").rgb(1.0) == cv::Vec3b(0xfd, 0xe7, 0x25));
  CHECK_THROWS_AS(find_colormap("jet"), Error);
  const auto names = colormap_names();
  CHECK(names.front() == "rdbu_r");
}

TEST_CASE("percentile of |map| is numpy's linear percentile over all maps pooled") {
  const torch::Tensor a = torch::tensor({-4.f, 1.f, 2.f, 3.f});
  CHECK(abs_percentile({a}, 50) == doctest::Approx(2.5));
  CHECK(abs_percentile({a}, 100) == doctest::Approx(4.0));
  CHECK(abs_percentile({a}, 0) == doctest::Approx(1.0));
  CHECK(abs_percentile({a}, 99) == doctest::Approx(3.97));
  const torch::Tensor b = torch::tensor({std::nanf(""), -10.f});
  CHECK(abs_percentile({a, b}, 100) == doctest::Approx(10.0));
  CHECK(abs_percentile({a, b}, 50) == doctest::Approx(3.0));   // {1, 2, 3, 4, 10}
  CHECK(abs_percentile({torch::zeros({3, 3})}, 99) == 0.0);
  CHECK_THROWS_AS(abs_percentile({a}, 101), Error);
  // A 2-D map is pooled like a flat one.
  const torch::Tensor grid = torch::arange(1, 101, torch::kFloat).view({10, 10}) * -1;
  CHECK(abs_percentile({grid}, 99) == doctest::Approx(99.01));
}

TEST_CASE("scales are symmetric around zero unless a sequential map has no negative values") {
  const Colormap& rdbu = find_colormap("rdbu_r");
  const Colormap& viridis = find_colormap("viridis");
  ColorScale s = make_scale(2.0, rdbu, true);
  CHECK(s.low == -2.0);
  CHECK(s.high == 2.0);
  CHECK(s.clip == 2.0);
  CHECK(s.position(0) == doctest::Approx(0.5));
  CHECK(s.position(1) == doctest::Approx(0.75));
  CHECK(s.position(-5) == 0.0);                 // beyond the clip: the end colour
  CHECK(make_scale(2.0, viridis, false).low == -2.0);
  CHECK(make_scale(2.0, viridis, true).low == 0.0);
  CHECK(make_scale(0.0, rdbu, true).clip == 1.0);  // all-zero map: centre colour, no division by 0
  CHECK_THROWS_AS(make_scale(-1, rdbu, true), Error);

  CHECK(parse_scale("per-image").mode == ScaleMode::PerImage);
  CHECK(parse_scale("global").mode == ScaleMode::Global);
  const ScaleSpec fixed = parse_scale("fixed:2.5");
  CHECK(fixed.mode == ScaleMode::Fixed);
  CHECK(fixed.fixed == 2.5);
  for (const char* bad : {"fixed:", "fixed:-1", "fixed:0", "fixed:2x", "global2", "Fixed:1"})
    CHECK_THROWS_AS(parse_scale(bad), Error);
}

TEST_CASE("colour bar ticks: the clip at both ends, zero, nice values in between") {
  const Colormap& rdbu = find_colormap("rdbu_r");
  CHECK(colorbar_ticks(make_scale(1.0, rdbu, false)) == std::vector<double>{-1, -0.5, 0, 0.5, 1});
  const auto small = colorbar_ticks(make_scale(0.0123, rdbu, false));
  REQUIRE(small.size() == 5);
  CHECK(small.front() == -0.0123);
  CHECK(small.back() == 0.0123);
  CHECK(small[1] == doctest::Approx(-0.005));
  CHECK(small[2] == 0.0);
  CHECK(small[3] == doctest::Approx(0.005));
  const auto seq = colorbar_ticks(make_scale(7.3, find_colormap("viridis"), true));
  CHECK(seq.front() == 0.0);
  CHECK(seq.back() == 7.3);
  for (size_t i = 1; i < seq.size(); ++i) CHECK(seq[i] > seq[i - 1]);
  CHECK(colorbar_ticks(make_scale(3, rdbu, false), 2) == std::vector<double>{-3, 3});
  CHECK(format_tick(0.0123) == "0.0123");
  CHECK(format_tick(-0.5) == "-0.5");
  CHECK(format_tick(1234.5678) == "1235");
  CHECK(format_tick(-0.0) == "0");
}

TEST_CASE("patch-aligned cells: each cell paints the stride x stride pixels around its patch centre") {
  struct Case {
    std::string arch;
    int64_t size;
  };
  for (const Case& k : {Case{"bagnet33", 224}, Case{"bagnet17", 224}, Case{"bagnet9", 160},
                        Case{"bagnet9:strides=2-2-1-1", 64}, Case{"bagnet17", 100}}) {
    CAPTURE(k.arch);
    CAPTURE(k.size);
    const MapGeometry g = map_geometry(parse_arch(k.arch), k.size, k.size + 16);
    const MapLayout l = layout_of(g);
    CHECK(l.stride == g.stride);
    CHECK(l.covered.bottom() == g.input_height - g.uncovered_bottom());
    CHECK(l.covered.right() == g.input_width - g.uncovered_right());
    const cv::Mat v = sample_map(index_map(g.rows, g.cols), l, Upsample::Cells, Frame::Input, ImageTransform{});
    REQUIRE(v.rows == g.input_height);
    REQUIRE(v.cols == g.input_width);
    std::vector<int64_t> painted(static_cast<size_t>(g.rows), 0);
    for (int y = 0; y < v.rows; ++y) {
      const float value = v.at<float>(y, 0);
      if (y >= l.covered.bottom()) {
        CHECK(std::isnan(value));  // seen by no patch: never given a value
        continue;
      }
      REQUIRE_FALSE(std::isnan(value));
      const int64_t cell = static_cast<int64_t>(value) / 1000;
      CHECK(cell == nearest_cell(y, l, g.rows));
      const Box box = g.cell_box(cell, 0);
      CHECK(y >= box.top);         // the painted pixel lies inside the patch it shows
      CHECK(y < box.bottom());
      ++painted[static_cast<size_t>(cell)];
    }
    // Interior cells paint exactly `stride` rows; the border cells also cover the band that only
    // their patches see.
    for (int64_t i = 1; i + 1 < g.rows; ++i) CHECK(painted[size_t(i)] == g.stride);
    for (int x = 0; x < v.cols; ++x) {
      const float value = v.at<float>(g.patch / 2, x);
      if (x >= l.covered.right()) {
        CHECK(std::isnan(value));
        continue;
      }
      CHECK(int64_t(value) % 1000 == nearest_cell(x, l, g.cols));
    }
  }
}

TEST_CASE("smooth upsampling interpolates between patch centres and stays constant beyond them") {
  const MapGeometry g = map_geometry(arch_preset("bagnet33"), 224, 224);
  const MapLayout l = layout_of(g);
  const torch::Tensor rows = torch::arange(g.rows, torch::kFloat).view({-1, 1}).expand({g.rows, g.cols}).contiguous();
  const cv::Mat v = sample_map(rows, l, Upsample::Smooth, Frame::Input, ImageTransform{});
  CHECK(v.at<float>(16, 5) == doctest::Approx(0.0));    // pixel 16's centre is cell 0's centre 16.5
  CHECK(v.at<float>(24, 5) == doctest::Approx(1.0));
  CHECK(v.at<float>(20, 5) == doctest::Approx(0.5));
  CHECK(v.at<float>(2, 5) == doctest::Approx(0.0));     // border band: constant
  CHECK(v.at<float>(210, 5) == doctest::Approx(23.0));
  CHECK(std::isnan(v.at<float>(220, 5)));
  CHECK_THROWS_AS(sample_map(torch::zeros({3, 3}), l, Upsample::Smooth, Frame::Input, ImageTransform{}), Error);
}

TEST_CASE("dense maps: cells centred on every stride-th pixel, the whole input covered") {
  DenseMap d;
  d.stride = 2;
  d.patch = 9;
  d.input_height = 10;
  d.input_width = 9;
  d.logits = index_map(5, 5).view({1, 1, 5, 5});
  const MapLayout l = layout_of(d);
  CHECK(l.covered.bottom() == 10);
  CHECK(l.covered.right() == 9);
  const cv::Mat v = sample_map(d.logits[0][0], l, Upsample::Cells, Frame::Input, ImageTransform{});
  for (int y = 0; y < 10; ++y) {
    // Cell i is centred on pixel 2i and paints pixels 2i - 1 and 2i.
    CHECK(int64_t(v.at<float>(y, 0)) / 1000 == std::min<int64_t>((y + 1) / 2, 4));
  }
  CHECK(int64_t(v.at<float>(0, 8)) % 1000 == 4);
}

TEST_CASE("original frame: the map lands on the part of the original the model saw") {
  // A 100 x 210 original resized to 50 x 105 and centre-cropped to 48 x 48.
  ImageTransform t;
  t.original_height = 100;
  t.original_width = 210;
  t.resized_height = 50;
  t.resized_width = 105;
  t.crop_top = 1;
  t.crop_left = 28;
  t.input_height = t.input_width = 48;
  const MapGeometry g = map_geometry(arch_preset("bagnet9"), 48, 48);
  const MapLayout l = layout_of(g);
  const cv::Mat original = sample_map(index_map(g.rows, g.cols), l, Upsample::Cells, Frame::Original, t);
  REQUIRE(original.rows == 100);
  REQUIRE(original.cols == 210);
  const BoxF region = t.input_region();
  CHECK(region.top == 2.0);
  CHECK(region.left == 56.0);
  int inside = 0;
  for (int y = 0; y < original.rows; ++y)
    for (int x = 0; x < original.cols; ++x) {
      const float value = original.at<float>(y, x);
      // The model-input coordinate under this original pixel's centre (2 : 1, then the crop).
      const double iy = (y + 0.5) * 0.5 - 1, ix = (x + 0.5) * 0.5 - 28;
      const bool seen = iy >= 0 && iy < double(l.covered.bottom()) && ix >= 0 && ix < double(l.covered.right());
      if (!seen) {
        CHECK(std::isnan(value));
        continue;
      }
      REQUIRE_FALSE(std::isnan(value));
      const int64_t cy = nearest_cell_at(iy, l, g.rows), cx = nearest_cell_at(ix, l, g.cols);
      CHECK(int64_t(value) == cy * 1000 + cx);
      const Box box = g.cell_box(cy, cx);
      CHECK(iy >= double(box.top));  // inside the patch it shows
      CHECK(iy < double(box.bottom()));
      ++inside;
    }
  // Seen: the 41 x 41 covered input pixels, at 2 x 2 original pixels each.
  CHECK(inside == 82 * 82);
}

TEST_CASE("uncovered pixels are hatched, never coloured as a value") {
  const Colormap& rdbu = find_colormap("rdbu_r");
  const ColorScale s = make_scale(1, rdbu, false);
  cv::Mat values(8, 8, CV_32FC1, cv::Scalar(0.25));
  values.rowRange(6, 8).setTo(std::nanf(""));
  const cv::Mat colours = colorize(values, rdbu, s);
  int lines = 0;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) {
      const cv::Vec3b px = colours.at<cv::Vec3b>(y, x);
      if (y < 6) {
        CHECK(px == rdbu.rgb(s.position(0.25)));
      } else {
        CHECK(is_hatch(px));
        lines += px == cv::Vec3b(150, 150, 150);
      }
    }
  CHECK(lines > 0);
  // No colour of the map is a hatch colour, so the two cannot be confused.
  for (int i = 0; i <= 1000; ++i) CHECK_FALSE(is_hatch(rdbu.rgb(i / 1000.0)));

  // In a rendered figure the band below the last patch is hatched too.
  const MapGeometry g = map_geometry(arch_preset("bagnet33"), 224, 224);
  cv::Mat flat(224, 224, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
  RenderOptions opt;
  opt.titles = opt.colorbar = false;
  const Figure fig = render_figure(flat, identity(224, 224), {{torch::randn({g.rows, g.cols}), "x"}}, layout_of(g), opt);
  REQUIRE(fig.tiles.size() == 1);
  const cv::Mat tile = fig.rgb(fig.tiles[0]);
  for (int y = 0; y < 224; ++y)
    for (int x = 0; x < 224; ++x)
      if (y >= 217 || x >= 217) CHECK(is_hatch(tile.at<cv::Vec3b>(y, x)));
}

TEST_CASE("global scale: one clip over several images; per-image clips differ") {
  const MapGeometry g = map_geometry(arch_preset("bagnet17"), 96, 96);
  const MapLayout l = layout_of(g);
  torch::manual_seed(7);
  const torch::Tensor a = torch::randn({g.rows, g.cols}) * 0.1;
  const torch::Tensor b = torch::randn({g.rows, g.cols}) * 2.0;
  const cv::Mat photo = synthetic_photo(96, 96);
  RenderOptions opt;
  opt.titles = opt.colorbar = false;
  opt.edge_alpha = 0;
  opt.min_display = 0;
  const Figure own_a = render_figure(photo, identity(96, 96), {{a, "a"}}, l, opt);
  const Figure own_b = render_figure(photo, identity(96, 96), {{b, "b"}}, l, opt);
  CHECK(own_a.scale.clip == doctest::Approx(abs_percentile({a}, 99)));
  CHECK(own_b.scale.clip == doctest::Approx(abs_percentile({b}, 99)));
  CHECK(own_b.scale.clip > 5 * own_a.scale.clip);

  opt.clip = abs_percentile({a, b}, 99);
  const Figure global_a = render_figure(photo, identity(96, 96), {{a, "a"}}, l, opt);
  const Figure global_b = render_figure(photo, identity(96, 96), {{b, "b"}}, l, opt);
  CHECK(global_a.scale.clip == *opt.clip);
  CHECK(global_b.scale.clip == *opt.clip);
  // The same value gets the same colour in both pictures: check every cell centre.
  const Colormap& rdbu = find_colormap("rdbu_r");
  const int64_t c0 = g.patch / 2;
  for (int64_t i = 0; i < g.rows; ++i)
    for (int64_t j = 0; j < g.cols; ++j) {
      const int y = int(c0 + g.stride * i), x = int(c0 + g.stride * j);
      CHECK(global_a.rgb(global_a.tiles[0]).at<cv::Vec3b>(y, x) ==
            rdbu.rgb(global_a.scale.position(a[i][j].item<float>())));
      CHECK(global_b.rgb(global_b.tiles[0]).at<cv::Vec3b>(y, x) ==
            rdbu.rgb(global_b.scale.position(b[i][j].item<float>())));
    }
  // On the shared scale, the weak map is drawn pale (close to the centre colour).
  const cv::Vec3b centre = rdbu.rgb(0.5);
  int pale = 0;
  for (int64_t i = 0; i < g.rows; ++i)
    for (int64_t j = 0; j < g.cols; ++j)
      pale += close_rgb(global_a.rgb(global_a.tiles[0]).at<cv::Vec3b>(int(c0 + g.stride * i), int(c0 + g.stride * j)),
                        centre, 40);
  CHECK(pale == g.rows * g.cols);

  // Panels put all their maps on one scale, pooled over the maps.
  opt.clip.reset();
  opt.style = Style::Panel;
  const Figure panel = render_figure(photo, identity(96, 96), {{a, "a"}, {b, "b"}}, l, opt);
  CHECK(panel.tiles.size() == 3);
  CHECK(panel.scale.clip == doctest::Approx(abs_percentile({a, b}, 99)));
  opt.style = Style::Paper;
  CHECK_THROWS_AS(render_figure(photo, identity(96, 96), {{a, "a"}, {b, "b"}}, l, opt), Error);
}

TEST_CASE("paper edges follow the photo's contours and leave the border empty") {
  cv::Mat photo(120, 160, CV_32FC3, cv::Scalar(0.1, 0.1, 0.1));
  cv::rectangle(photo, cv::Point(40, 30), cv::Point(119, 89), cv::Scalar(0.9, 0.9, 0.9), cv::FILLED);
  const cv::Mat edges = paper_edges(photo, 0.5);
  REQUIRE(edges.size() == photo.size());
  int count = 0;
  for (int y = 0; y < edges.rows; ++y)
    for (int x = 0; x < edges.cols; ++x) {
      if (!edges.at<uchar>(y, x)) continue;
      ++count;
      const int to_edge = std::min({std::abs(y - 30), std::abs(y - 89), std::abs(x - 40), std::abs(x - 119)});
      CHECK(to_edge <= 3);
      CHECK(y >= 8);    // 4 pixels of the 60 x 80 edge map (5 of 112, scaled) = 8 here
      CHECK(x >= 8);
    }
  CHECK(count > 2 * (80 + 60));  // the whole outline, two pixels thick
}

TEST_CASE("golden picture: a fixed map renders to the stored pixels") {
  // Tolerance: colours come from exact arithmetic, but text anti-aliasing, Gaussian blur and
  // Canny may differ by a level or flip an edge pixel between OpenCV builds. So at most 0.5% of
  // the pixels may differ by more than 2 levels in any channel, and the mean difference must stay
  // below 0.25 levels; a change of colour map, scale, geometry or layout fails both by far.
  const MapGeometry g = map_geometry(arch_preset("bagnet17"), 96, 96);
  torch::Tensor map = torch::empty({g.rows, g.cols});
  for (int64_t i = 0; i < g.rows; ++i)
    for (int64_t j = 0; j < g.cols; ++j)
      map[i][j] = std::sin(0.7 * double(i)) * std::cos(0.45 * double(j)) * 2.0 + 0.1 * double(i - j);
  RenderOptions opt;
  opt.min_display = 0;
  const Figure fig = render_figure(synthetic_photo(96, 96), identity(96, 96), {{map, "281 tabby  (logit 1.234)"}},
                                   layout_of(g), opt);
  const std::string path = std::string(BAGNET_SOURCE_DIR) + "/tests/golden/render-paper.png";
  if (std::getenv("BAGNET_UPDATE_GOLDEN")) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    REQUIRE(cv::imwrite(path, fig.bgr()));
  }
  const cv::Mat stored = cv::imread(path, cv::IMREAD_COLOR);
  REQUIRE_FALSE(stored.empty());
  REQUIRE(stored.size() == fig.rgb.size());
  cv::Mat diff;
  cv::absdiff(stored, fig.bgr(), diff);
  int far = 0;
  for (int y = 0; y < diff.rows; ++y)
    for (int x = 0; x < diff.cols; ++x) {
      const cv::Vec3b d = diff.at<cv::Vec3b>(y, x);
      far += std::max({d[0], d[1], d[2]}) > 2;
    }
  const cv::Scalar mean = cv::mean(diff);
  CHECK(far <= diff.total() / 200);
  CHECK((mean[0] + mean[1] + mean[2]) / 3 < 0.25);
  // The picture records its scale.
  CHECK(fig.scale.clip == doctest::Approx(abs_percentile({map}, 99)));
}

namespace {

// The default model's input: 28 x 28 grey (Fashion-MNIST), q = 9, total stride 2.
const char* kSmallArch = "blocks=1-1-1-1,kernel3=1-1-0-0,strides=2-1-1-1,widths=8-16-32-32,stem=16,in=1";

// Distance from display pixel (y, x) to the outline of the rectangle [top, bottom) x [left, right).
double to_outline(double y, double x, double top, double left, double bottom, double right) {
  const bool inside = y >= top && y < bottom && x >= left && x < right;
  const double dy = std::max({top - y, y - bottom, 0.0}), dx = std::max({left - x, x - right, 0.0});
  if (!inside) return std::hypot(dy, dx);
  return std::min({y - top, bottom - y, x - left, right - x});
}

int dark_pixels(const cv::Mat& rgb, const cv::Rect& region) {
  int n = 0;
  for (int y = region.y; y < region.br().y; ++y)
    for (int x = region.x; x < region.br().x; ++x) {
      const cv::Vec3b px = rgb.at<cv::Vec3b>(y, x);
      n += px[0] < 120 && px[1] < 120 && px[2] < 120;
    }
  return n;
}

}  // namespace

TEST_CASE("paper edges on a 28 px input outline the object at the displayed size, never over hatching") {
  // A Fashion-MNIST-like picture: a bright rectangle on black, 28 x 40 with a centre crop of 28 x 28
  // (the model input), and a bright bar outside the crop whose edges must not be drawn anywhere.
  cv::Mat original(28, 40, CV_32FC3, cv::Scalar(0, 0, 0));
  cv::rectangle(original, cv::Point(10, 6), cv::Point(29, 21), cv::Scalar(0.9, 0.9, 0.9), cv::FILLED);  // input cols 4..24
  cv::rectangle(original, cv::Point(1, 5), cv::Point(3, 22), cv::Scalar(1, 1, 1), cv::FILLED);
  ImageTransform t = identity(28, 40);
  t.input_width = 28;
  t.crop_left = 6;
  const MapGeometry g = map_geometry(parse_arch(kSmallArch), 28, 28);
  REQUIRE(g.rows == 10);
  const MapLayout l = layout_of(g);
  RenderOptions opt;
  opt.titles = opt.colorbar = false;
  const Colormap& rdbu = find_colormap(opt.colormap);
  const cv::Vec3b zero = rdbu.rgb(0.5);  // an all-zero map: every seen pixel has the centre colour
  for (const Frame frame : {Frame::Input, Frame::Original}) {
    CAPTURE(frame == Frame::Input);
    opt.frame = frame;
    const Figure fig = render_figure(original, t, {{torch::zeros({g.rows, g.cols}), "x"}}, l, opt);
    REQUIRE(fig.tiles.size() == 1);
    const cv::Mat tile = fig.rgb(fig.tiles[0]);
    const int z = fig.zoom;
    CHECK(std::max(tile.rows, tile.cols) >= 200);
    // The rectangle's outline in displayed pixels.
    const double left = (frame == Frame::Input ? 4 : 10) * z, right = (frame == Frame::Input ? 24 : 30) * z;
    const double top = 6 * z, bottom = 22 * z;
    const cv::Mat values = sample_map(torch::zeros({g.rows, g.cols}), l, Upsample::Cells, frame, t);
    int edge_pixels = 0, far = 0;
    cv::Mat near_edge(tile.size(), CV_8UC1, cv::Scalar(0));
    // The original frame outlines the crop (display columns 6z and 34z, rows 0 and 28z): not a map pixel.
    auto on_outline = [&](int y, int x) {
      return frame == Frame::Original &&
             (std::abs(x - 6 * z) <= 3 || std::abs(x - 34 * z) <= 3 || y <= 3 || y >= tile.rows - 4);
    };
    for (int y = 0; y < tile.rows; ++y)
      for (int x = 0; x < tile.cols; ++x) {
        const cv::Vec3b px = tile.at<cv::Vec3b>(y, x);
        if (on_outline(y, x)) continue;
        if (std::isnan(values.at<float>(y / z, x / z))) {
          CHECK(is_hatch(px));  // unseen pixels stay plain hatching, edges or not
          continue;
        }
        if (px == zero) continue;
        ++edge_pixels;
        cv::circle(near_edge, cv::Point(x, y), z, cv::Scalar(255), cv::FILLED);
        // Edges are thin lines on the outline, not blocks in the middle of the map.
        far += to_outline(y + 0.5, x + 0.5, top, left, bottom, right) > 1.5 * z;
      }
    CHECK(edge_pixels > 0);
    CHECK(far == 0);
    // The whole outline is drawn (away from the corners), not only its middle.
    int missed = 0, sampled = 0;
    for (double x = left + 2 * z; x < right - 2 * z; x += z / 2.0)
      for (const double y : {top, bottom}) {
        ++sampled;
        missed += near_edge.at<uchar>(int(y), int(x)) == 0;
      }
    for (double y = top + 2 * z; y < bottom - 2 * z; y += z / 2.0)
      for (const double x : {left, right}) {
        ++sampled;
        missed += near_edge.at<uchar>(int(y), std::min(int(x), tile.cols - 1)) == 0;
      }
    CHECK(missed <= sampled / 20);
    // Lines, not areas: far fewer edge pixels than a band of 2 input pixels around the outline.
    CHECK(edge_pixels < 2 * z * 2 * (right - left + bottom - top));
  }
}

TEST_CASE("text wraps instead of being cut, and keeps both ends when it must be shortened") {
  const bagnet::detail::TextWidth chars = [](const std::string& t) { return static_cast<int>(t.size()); };
  auto joined = [](const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l;
    return out;
  };
  auto without_spaces = [](std::string s) {
    s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
    return s;
  };
  const std::string title = "117 chambered nautilus, pearly nautilus, nautilus";
  auto lines = bagnet::detail::wrap_text(title, 12, chars);
  for (const auto& l : lines) CHECK(l.size() <= 12);
  CHECK(without_spaces(joined(lines)) == without_spaces(title));
  CHECK(lines[0] == "117");
  CHECK(lines[1] == "chambered");
  const std::string file = "n01440764_10026_a_long_name.JPEG#12";
  lines = bagnet::detail::wrap_text(file, 10, chars);
  CHECK(joined(lines) == file);          // no character lost
  CHECK(lines[0] == "n01440764_");       // broken after the separator
  CHECK(bagnet::detail::wrap_text("#10  logit -12.345", 11, chars) == std::vector<std::string>{"#10  logit", "-12.345"});
  // Over a line budget, the middle goes: the start (an index) and the end (a counter) stay.
  lines = bagnet::detail::wrap_text(file, 10, chars, 2);
  REQUIRE(lines.size() <= 2);
  CAPTURE(joined(lines));
  CHECK(joined(lines).rfind("n0144", 0) == 0);
  CHECK(joined(lines).find("...") != std::string::npos);
  CHECK(joined(lines).substr(joined(lines).size() - 3) == "#12");
  CHECK(bagnet::detail::abbreviate_middle("img_0001_of_a_series.png", 13, chars) == "img_0...s.png");
  CHECK(bagnet::detail::abbreviate_middle("short.png", 13, chars) == "short.png");
  CHECK(bagnet::detail::wrap_text("", 10, chars) == std::vector<std::string>{""});
}

TEST_CASE("titles of narrow figures wrap onto more lines; the colour bar names its unit") {
  // A tall narrow original (as --frame original shows a portrait photo): the title used to be cut.
  const MapGeometry g = map_geometry(arch_preset("bagnet9"), 300, 96);
  const torch::Tensor map = torch::randn({g.rows, g.cols});
  RenderOptions opt;
  opt.min_display = 0;
  const cv::Mat photo = synthetic_photo(300, 96);
  const Figure short_title = render_figure(photo, identity(300, 96), {{map, "117\nimage logit 1.234"}}, layout_of(g), opt);
  const Figure long_title = render_figure(photo, identity(300, 96), {{map, "117 chambered nautilus, pearly nautilus, nautilus\nimage logit 1.234"}},
                                          layout_of(g), opt);
  // More title lines: the tile moves down.
  CHECK(long_title.tiles[0].y > short_title.tiles[0].y);

  // The unit is written upwards beside the colour bar's tick labels, with or without titles.
  for (const bool titles : {true, false}) {
    CAPTURE(titles);
    opt.titles = titles;
    const Figure fig = render_figure(photo, identity(300, 96), {{map, "x"}}, layout_of(g), opt);
    opt.colorbar_unit.clear();
    const Figure bare = render_figure(photo, identity(300, 96), {{map, "x"}}, layout_of(g), opt);
    opt.colorbar_unit = "logit";
    REQUIRE_FALSE(fig.colorbar.empty());
    REQUIRE(fig.colorbar.width > bare.colorbar.width);
    CHECK(fig.colorbar.x >= fig.tiles[0].br().x);
    const cv::Rect beside(fig.colorbar.x + bare.colorbar.width, fig.colorbar.y, fig.colorbar.width - bare.colorbar.width,
                          fig.colorbar.height);
    CHECK(dark_pixels(fig.rgb, beside) > 10);
  }
}

TEST_CASE("patch grid captions wrap: the rank of #10 and the end of a long file name stay") {
  const cv::Mat crop(9, 9, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
  GridOptions options;
  options.columns = 4;
  const cv::Mat short_grid = render_patch_grid({{crop, {"#1  logit 2.5", "a.png"}}}, options);
  const cv::Mat long_grid =
      render_patch_grid({{crop, {"#10  logit -12.345", "n01440764_10026_a_long_name.JPEG#12"}}}, options);
  // Each long line needs a second line rather than losing its start (rank) or end (#sample).
  CHECK(long_grid.rows >= short_grid.rows + 2 * 14);
  CHECK(long_grid.cols == short_grid.cols);
}

TEST_CASE("README shows exactly the commands scripts/figures.sh makes its figures with") {
  auto read = [](const std::string& relative) {
    std::ifstream in(std::string(BAGNET_SOURCE_DIR) + "/" + relative);
    REQUIRE(in.good());
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string readme = read("README.md"), script = read("scripts/figures.sh");
  std::istringstream lines(script);
  size_t commands = 0, figures = 0;
  bool inside = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# ---", 0) == 0) {
      inside = !inside;
      continue;
    }
    if (!inside) continue;
    CAPTURE(line);
    if (line.rfind("bagnet ", 0) == 0) {
      ++commands;
      CHECK(readme.find("\n" + line + "\n") != std::string::npos);
    } else if (line.rfind("made+=(", 0) == 0) {
      ++figures;
      const std::string png = line.substr(7, line.size() - 8);
      CHECK(readme.find("](" + png + ")") != std::string::npos);
    }
  }
  CHECK(commands >= 3);
  CHECK(figures == commands);
}

TEST_CASE("render_diff_figure: image and three maps on one scale, strongest cells outlined where they are") {
  EvidenceShift s;
  s.to_class = 1;
  s.from_class = 0;
  s.stride = 1;
  s.patch = 5;
  s.margin_a = torch::zeros({20, 24});
  s.margin_b = torch::zeros({20, 24});
  s.margin_a[10][6] = 4.0f;
  s.difference = s.margin_a - s.margin_b;
  s.toward_a = {{10, 6, 4.0, Box{8, 4, 5, 5}}};  // the 5 x 5 box centred on cell (10, 6)
  const cv::Mat grey(20, 24, CV_32FC1, cv::Scalar(0.5));
  const Figure f = render_diff_figure(grey, ImageTransform::identity(20, 24), s, {"zero", "one"});
  REQUIRE(f.tiles.size() == 4);  // image, before, after, difference
  CHECK(f.scale.clip > 0);
  // The box's top-left corner in the difference tile (and on the image) is drawn black, the tile's
  // pixel next to it outside the box is not.
  for (const size_t tile : {size_t{0}, size_t{3}}) {
    const cv::Rect& t = f.tiles[tile];
    const cv::Vec3b corner = f.rgb.at<cv::Vec3b>(t.y + 8 * f.zoom, t.x + 4 * f.zoom + f.zoom);
    CHECK(corner == cv::Vec3b(0, 0, 0));
    const cv::Vec3b outside = f.rgb.at<cv::Vec3b>(t.y + 2 * f.zoom, t.x + 16 * f.zoom);
    CHECK(outside != cv::Vec3b(0, 0, 0));
  }
  EvidenceShift wrong = s;
  wrong.difference = torch::zeros({3});
  CHECK_THROWS_AS(render_diff_figure(grey, ImageTransform::identity(20, 24), wrong, {}), Error);
}
