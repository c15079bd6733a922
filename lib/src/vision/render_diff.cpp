// render_diff_figure (diff_view.h): three maps on one scale through render_figure, boxes on top.
#include <bagnet/diff_view.h>
#include <bagnet/error.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>

namespace bagnet {

namespace {

std::string class_name(const std::vector<std::string>& names, int64_t c) {
  return c >= 0 && c < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(c)] : "class " + std::to_string(c);
}

// A rectangle drawn as dashes (every other `dash` pixels), so that it differs from a solid one
// without relying on colour.
void dashed_rectangle(cv::Mat& canvas, const cv::Rect& r, const cv::Scalar& colour, int thickness, int dash) {
  const auto segment = [&](cv::Point from, cv::Point to) {
    const int length = std::max(std::abs(to.x - from.x), std::abs(to.y - from.y));
    for (int s = 0; s < length; s += 2 * dash) {
      const int e = std::min(length, s + dash);
      const cv::Point a = from + (to - from) * s / std::max(1, length), b = from + (to - from) * e / std::max(1, length);
      cv::line(canvas, a, b, colour, thickness, cv::LINE_8);
    }
  };
  const cv::Point tl = r.tl(), tr(r.x + r.width - 1, r.y), br(r.x + r.width - 1, r.y + r.height - 1), bl(r.x, r.y + r.height - 1);
  segment(tl, tr);
  segment(tr, br);
  segment(br, bl);
  segment(bl, tl);
}

void outline_cells(Figure& figure, size_t tile, const std::vector<ShiftCell>& cells, bool solid) {
  const cv::Rect& t = figure.tiles.at(tile);
  const int z = figure.zoom, thickness = std::max(1, z / 4);
  for (const ShiftCell& c : cells) {
    cv::Rect r(t.x + static_cast<int>(c.box.left) * z, t.y + static_cast<int>(c.box.top) * z, static_cast<int>(c.box.width) * z,
               static_cast<int>(c.box.height) * z);
    r &= t;
    if (r.empty()) continue;
    // Black with a white halo reads on any map colour and on any photo.
    if (solid) {
      cv::rectangle(figure.rgb, r, cv::Scalar(255, 255, 255), thickness + 2);
      cv::rectangle(figure.rgb, r, cv::Scalar(0, 0, 0), thickness);
    } else {
      dashed_rectangle(figure.rgb, r, cv::Scalar(255, 255, 255), thickness + 2, 3 * thickness + 3);
      dashed_rectangle(figure.rgb, r, cv::Scalar(0, 0, 0), thickness, 3 * thickness + 3);
    }
  }
}

}  // namespace

Figure render_diff_figure(const cv::Mat& original, const ImageTransform& transform, const EvidenceShift& shift,
                          const std::vector<std::string>& names, const std::string& colormap) {
  BAGNET_CHECK(shift.difference.defined() && shift.difference.dim() == 2, ErrorKind::InvalidArgument,
               "diff figure: expected a [rows, cols] difference map");
  // The maps are dense maps (cell i centred on pixel stride * i): laid out as every dense map is.
  DenseMap grid;
  grid.logits = shift.difference.view({1, 1, shift.difference.size(0), shift.difference.size(1)});
  grid.stride = shift.stride;
  grid.patch = shift.patch;
  grid.input_height = transform.input_height;
  grid.input_width = transform.input_width;
  const MapLayout layout = layout_of(grid);
  const std::string a = class_name(names, shift.to_class), b = class_name(names, shift.from_class);
  RenderOptions options;
  options.style = Style::Panel;
  options.colormap = colormap;
  options.colorbar_unit = "logit margin";
  // The image tile's title names the change; the map tiles say whose margin map they show.
  const Figure base = render_figure(original, transform,
                                    {{shift.margin_b, "before (--against)\n" + a + " - " + b},
                                     {shift.margin_a, "after (--weights)\n" + a + " - " + b},
                                     {shift.difference, "after - before\nred: toward " + a}},
                                    layout, options);
  Figure figure = base;
  figure.rgb = base.rgb.clone();
  for (const size_t tile : {size_t{0}, figure.tiles.size() - 1}) {
    outline_cells(figure, tile, shift.toward_a, true);
    outline_cells(figure, tile, shift.toward_b, false);
  }
  return figure;
}

}  // namespace bagnet
