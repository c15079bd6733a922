#pragma once
// Heatmap pictures of evidence maps (OpenCV part): colour maps, honest colour scales, patch-aligned
// or smooth upsampling, the BagNet paper's style, overlays, panels and a colour bar.
//
//   bagnet::RenderOptions opt;                                   // paper style, RdBu_r, p99 clip
//   bagnet::MapLayout layout = bagnet::layout_of(map.geometry);  // where each cell sits on the input
//   bagnet::Figure fig = bagnet::render_figure(input.original, input.transform,
//                                              {{map.logits[0][0], "tabby"}}, layout, opt);
//   cv::imwrite("cat.png", fig.bgr());                           // fig.scale.clip: the value at the ends
// Full program: examples/library/render_heatmap.cpp.
//
// Pixel coordinates are continuous: model-input pixel p spans [p, p + 1).
#include <bagnet/arch.h>
#include <bagnet/evidence.h>
#include <bagnet/image.h>

#include <opencv2/core.hpp>
#include <torch/types.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace bagnet {

// ---- colour maps ----------------------------------------------------------------------------

// A colour map given by evenly spaced control points in sRGB, interpolated linearly between them
// (as matplotlib's LinearSegmentedColormap does for the ColorBrewer maps).
struct Colormap {
  std::string name;
  bool diverging = false;                      // centre colour = value 0 of a symmetric scale
  std::vector<std::array<double, 3>> stops;    // RGB in [0, 1], first = low end

  // t in [0, 1] (clamped; NaN gives the centre) -> RGB bytes.
  cv::Vec3b rgb(double t) const;
};

// "rdbu_r" (default; red = evidence for, blue = against), "puor_r" (colour-blind-safe diverging:
// orange = for, purple = against), "viridis", "greys". Throws Error(InvalidArgument) listing the
// known names.
const Colormap& find_colormap(const std::string& name);
std::vector<std::string> colormap_names();

// ---- colour scale ---------------------------------------------------------------------------

enum class ScaleMode {
  PerImage,  // clip from the maps of one figure
  Global,    // one clip pooled over all maps of a run (computed before rendering)
  Fixed,     // a clip given by the user
};

struct ScaleSpec {
  ScaleMode mode = ScaleMode::PerImage;
  double fixed = 0;   // the clip for ScaleMode::Fixed (> 0)
};

// "per-image", "global" or "fixed:V" (V > 0). Throws Error(InvalidArgument).
ScaleSpec parse_scale(const std::string& text);

// numpy.percentile(|values|, percentile) with linear interpolation over all finite values of all
// maps pooled together (float32 tensors of any shape). 0 when there are none.
double abs_percentile(const std::vector<torch::Tensor>& maps, double percentile);

// The limits values are mapped onto: [-clip, +clip] (symmetric; always for diverging maps or maps
// with negative values), or [0, clip] for a sequential map of non-negative values.
struct ColorScale {
  double low = -1, high = 1;
  double clip = 1;             // the clip value actually used
  // Position of `value` along the colour map in [0, 1] (clamped).
  double position(double value) const;
};

// Turns a clip into a scale. A clip of 0 (an all-zero map) becomes 1 so that every value is drawn
// in the centre colour instead of dividing by zero. `non_negative`: every value is >= 0.
ColorScale make_scale(double clip, const Colormap& cmap, bool non_negative);

// Tick values for a colour bar from low to high: the two ends (always) and "nice" values
// (1, 2, 2.5, 5 x 10^k steps) between them that are not too close to the ends; 0 is included for
// symmetric scales. At most `max_ticks` values.
std::vector<double> colorbar_ticks(const ColorScale& scale, int max_ticks = 7);

// A short label for a tick value (at most 4 significant digits, no trailing zeros).
std::string format_tick(double value);

// ---- where the map sits on the image --------------------------------------------------------

// Placement of a map's cells on the model input. Cell i's patch is centred on the continuous
// coordinate first_centre + stride * i (same rule for rows and columns).
struct MapLayout {
  int64_t rows = 0, cols = 0;
  int64_t input_height = 0, input_width = 0;
  int64_t stride = 0;          // pixels between neighbouring cells
  int64_t patch = 0;           // q
  double first_centre = 0;     // centre of cell 0's patch
  Box covered;                 // model-input pixels that at least one patch sees
};

// Native map: cell (i, j) sees rows [stride*i, stride*i + q), centre stride*i + q/2; the last
// rows/columns of an input may be seen by no patch. Dense map: cell (i, j) is centred on pixel
// (stride*i, stride*j) (centre stride*i + 0.5) and the zero-padded patches cover the whole input.
MapLayout layout_of(const MapGeometry& geometry);
MapLayout layout_of(const DenseMap& map);

enum class Upsample {
  Cells,   // each cell painted over the stride x stride pixels centred on its patch centre
  Smooth,  // bilinear between patch centres
};

// Where the output pixels are.
enum class Frame {
  Input,     // the model input (after resize/crop), one output pixel per input pixel
  Original,  // the original image's pixels; the part the model saw is outlined
};

// Samples `map` [rows, cols] float32 onto output pixels: CV_32FC1 of the input size (Frame::Input)
// or the original size (Frame::Original, through `transform`), NaN where no patch sees the pixel.
// Cells: output pixel at model-input coordinate y takes cell floor((y - first_centre)/stride + 1/2)
// (clamped to the map, so the border cells also cover the border band their patches see).
// Smooth: bilinear between centres, constant beyond the outer centres. Throws Error(InvalidArgument)
// when the map's shape does not match the layout.
cv::Mat sample_map(const torch::Tensor& map, const MapLayout& layout, Upsample upsample, Frame frame,
                   const ImageTransform& transform);

// ---- pictures -------------------------------------------------------------------------------

enum class Style {
  Paper,    // the map in the colour map, Canny edges of the grey photo on top (BagNet paper)
  Overlay,  // the coloured map blended over the photo
  Panel,    // photo | one tile per map, side by side
};

struct RenderOptions {
  Style style = Style::Paper;
  std::string colormap = "rdbu_r";
  double percentile = 99;            // clip = this percentile of |map| (per figure) unless `clip`
  std::optional<double> clip;        // a given clip (global or fixed scale)
  Upsample upsample = Upsample::Cells;
  Frame frame = Frame::Input;
  double edge_alpha = 0.25;          // paper: opacity of the edge lines
  double edge_scale = 0.5;           // paper: edges found at this fraction of the model input's resolution,
                                     // but at no fewer than edge_scale x 224 pixels across the displayed
                                     // tile (the paper's 112 px edge maps of 224 px inputs; a 28 px input
                                     // gets its edges from the enlarged photo), never finer than displayed
  double overlay_alpha = 0.6;        // overlay: opacity of the heatmap over the photo
  bool colorbar = true;
  bool titles = true;                // a title above every tile ('\n' separates lines; a line wider than the
                                     // tile wraps, nothing is cut off)
  std::string colorbar_unit = "logit";  // what the colour bar's numbers are, written upwards beside them
  std::string clip_note = "p99";     // printed under the colour bar after the clip value
  int min_display = 224;             // tiles whose longer side is smaller are enlarged by an integer
                                     // factor (nearest neighbour, so pixels stay pixels) for legible text
};

struct MapTile {
  torch::Tensor map;                 // [rows, cols] float32 (any device; copied to CPU)
  std::string title;
};

struct Figure {
  cv::Mat rgb;                       // CV_8UC3, RGB
  ColorScale scale;                  // limits used; scale.clip is the clip value
  std::vector<cv::Rect> tiles;       // where each tile (photo first in panels) lies in `rgb`
  cv::Rect colorbar;                 // where the colour bar with its tick labels lies (empty: none)
  int zoom = 1;                      // integer enlargement applied to the tiles (min_display)
  cv::Mat bgr() const;               // for cv::imwrite
};

// The photo in the output frame: CV_32FC3 RGB [0, 1]. `original` is ModelInput::original
// (RGB or grey, original size); Frame::Input resizes and crops it as the model input was.
cv::Mat photo_in_frame(const cv::Mat& original, const ImageTransform& transform, Frame frame);

// Canny edges as the paper draws them: grey = mean of RGB, rescaled by `scale` in (0, 1] with
// anti-aliasing, Canny (Gaussian sigma 1, hysteresis thresholds 0.1 / 0.2 of the intensity range),
// the outer 5 pixels of the edge map cleared (the paper's 5 of 112; smaller edge maps clear the same
// fraction, at least 1 pixel), then resized (nearest) to the photo's size. CV_8UC1, 255 = edge.
// render_figure passes the photo as displayed and chooses `scale` (see RenderOptions::edge_scale).
cv::Mat paper_edges(const cv::Mat& photo, double scale);

// Colours a value image (from sample_map) into CV_8UC3 RGB; NaN pixels (seen by no patch) are
// hatched with grey diagonal lines so they cannot be mistaken for any value.
cv::Mat colorize(const cv::Mat& values, const Colormap& cmap, const ColorScale& scale);

// Renders one figure of one image: the style's composition of the tiles, all on one colour scale
// (the clip from `options.clip`, else the percentile over all tiles pooled), plus the colour bar
// with its unit beside it. Edges (paper and panel styles) are not drawn over pixels no patch sees.
// `original`/`transform` as in ModelInput. Throws Error(InvalidArgument) for bad options or maps.
Figure render_figure(const cv::Mat& original, const ImageTransform& transform, const std::vector<MapTile>& tiles,
                     const MapLayout& layout, const RenderOptions& options);

}  // namespace bagnet
