// Placing map cells on pixels: patch-aligned cells or bilinear upsampling, in the model input's
// frame or mapped back to the original image. Pixels no patch sees become NaN, never a value.
#include <bagnet/error.h>
#include <bagnet/render.h>

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace bagnet {
namespace {

// For one axis: which cells (and weights) each output pixel reads, or -1 when no patch sees it.
struct AxisSamples {
  std::vector<int64_t> lo, hi;
  std::vector<float> weight_hi;
};

AxisSamples axis_samples(int64_t out_size, double scale, double offset, int64_t cells, double first_centre,
                         double stride, int64_t covered_begin, int64_t covered_end, Upsample upsample) {
  AxisSamples s;
  s.lo.resize(out_size);
  s.hi.resize(out_size);
  s.weight_hi.assign(out_size, 0.f);
  for (int64_t p = 0; p < out_size; ++p) {
    const double y = (double(p) + 0.5) * scale - offset;  // continuous model-input coordinate
    if (y < double(covered_begin) || y >= double(covered_end)) {
      s.lo[p] = s.hi[p] = -1;
      continue;
    }
    const double u = (y - first_centre) / stride;
    if (upsample == Upsample::Cells) {
      const int64_t i = std::clamp<int64_t>(static_cast<int64_t>(std::floor(u + 0.5)), 0, cells - 1);
      s.lo[p] = s.hi[p] = i;
    } else {
      const double c = std::clamp(u, 0.0, double(cells - 1));
      const int64_t i = std::min<int64_t>(static_cast<int64_t>(std::floor(c)), cells - 1);
      s.lo[p] = i;
      s.hi[p] = std::min<int64_t>(i + 1, cells - 1);
      s.weight_hi[p] = static_cast<float>(c - double(i));
    }
  }
  return s;
}

}  // namespace

MapLayout layout_of(const MapGeometry& g) {
  MapLayout l;
  l.rows = g.rows;
  l.cols = g.cols;
  l.input_height = g.input_height;
  l.input_width = g.input_width;
  l.stride = g.stride;
  l.patch = g.patch;
  l.first_centre = double(g.patch) / 2.0;
  l.covered = Box{0, 0, std::min(g.input_height, (g.rows - 1) * g.stride + g.patch),
                  std::min(g.input_width, (g.cols - 1) * g.stride + g.patch)};
  return l;
}

MapLayout layout_of(const DenseMap& d) {
  BAGNET_CHECK(d.logits.dim() == 4, ErrorKind::InvalidArgument, "dense map: expected logits [N, K, H, W], got ",
               d.logits.dim(), " dimensions");
  MapLayout l;
  l.rows = d.logits.size(2);
  l.cols = d.logits.size(3);
  l.input_height = d.input_height;
  l.input_width = d.input_width;
  l.stride = d.stride;
  l.patch = d.patch;
  l.first_centre = 0.5;
  // Zero padding centres a patch on every pixel, so every pixel is seen.
  l.covered = Box{0, 0, d.input_height, d.input_width};
  return l;
}

cv::Mat sample_map(const torch::Tensor& map, const MapLayout& layout, Upsample upsample, Frame frame,
                   const ImageTransform& transform) {
  BAGNET_CHECK(map.dim() == 2 && map.size(0) == layout.rows && map.size(1) == layout.cols,
               ErrorKind::InvalidArgument, "map of shape ", map.sizes(), " does not match the layout's ", layout.rows,
               "x", layout.cols, " cells");
  BAGNET_CHECK(layout.rows > 0 && layout.cols > 0 && layout.stride > 0, ErrorKind::InvalidArgument,
               "empty map layout");
  const torch::Tensor cells = map.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const float* v = cells.data_ptr<float>();
  int64_t out_h = layout.input_height, out_w = layout.input_width;
  double sy = 1, sx = 1, oy = 0, ox = 0;
  if (frame == Frame::Original) {
    BAGNET_CHECK(transform.input_height == layout.input_height && transform.input_width == layout.input_width &&
                     transform.original_height > 0 && transform.original_width > 0,
                 ErrorKind::InvalidArgument, "image transform (input ", transform.input_height, "x",
                 transform.input_width, ") does not match the map's input ", layout.input_height, "x",
                 layout.input_width);
    out_h = transform.original_height;
    out_w = transform.original_width;
    sy = double(transform.resized_height) / double(transform.original_height);
    sx = double(transform.resized_width) / double(transform.original_width);
    oy = double(transform.crop_top);
    ox = double(transform.crop_left);
  }
  const double stride = double(layout.stride);
  const AxisSamples ys = axis_samples(out_h, sy, oy, layout.rows, layout.first_centre, stride, layout.covered.top,
                                      layout.covered.bottom(), upsample);
  const AxisSamples xs = axis_samples(out_w, sx, ox, layout.cols, layout.first_centre, stride, layout.covered.left,
                                      layout.covered.right(), upsample);
  cv::Mat out(static_cast<int>(out_h), static_cast<int>(out_w), CV_32FC1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const int64_t cols = layout.cols;
  for (int r = 0; r < out.rows; ++r) {
    float* row = out.ptr<float>(r);
    const int64_t i0 = ys.lo[r], i1 = ys.hi[r];
    const float fy = ys.weight_hi[r];
    for (int c = 0; c < out.cols; ++c) {
      const int64_t j0 = xs.lo[c], j1 = xs.hi[c];
      if (i0 < 0 || j0 < 0) {
        row[c] = nan;
        continue;
      }
      const float fx = xs.weight_hi[c];
      const float top = v[i0 * cols + j0] * (1 - fx) + v[i0 * cols + j1] * fx;
      const float bottom = v[i1 * cols + j0] * (1 - fx) + v[i1 * cols + j1] * fx;
      row[c] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

cv::Mat photo_in_frame(const cv::Mat& original, const ImageTransform& t, Frame frame) {
  BAGNET_CHECK(!original.empty() && (original.type() == CV_32FC3 || original.type() == CV_32FC1),
               ErrorKind::InvalidArgument, "photo: expected an RGB or grey float image");
  cv::Mat rgb;
  if (original.channels() == 1)
    cv::cvtColor(original, rgb, cv::COLOR_GRAY2RGB);
  else
    rgb = original;
  if (frame == Frame::Original) return rgb;
  cv::Mat resized = rgb;
  if (t.resized_height != rgb.rows || t.resized_width != rgb.cols) {
    // The same interpolation as preprocess(), so the photo shows what the model saw.
    const bool shrinking = t.resized_height < rgb.rows;
    cv::resize(rgb, resized, cv::Size(int(t.resized_width), int(t.resized_height)), 0, 0,
               shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  BAGNET_CHECK(t.crop_top + t.input_height <= resized.rows && t.crop_left + t.input_width <= resized.cols,
               ErrorKind::InvalidArgument, "photo: transform's crop lies outside the resized image");
  return resized(cv::Rect(int(t.crop_left), int(t.crop_top), int(t.input_width), int(t.input_height))).clone();
}

}  // namespace bagnet
