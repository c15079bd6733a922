// Colour maps from their control points, percentile clips and colour-bar ticks.
#include <bagnet/error.h>
#include <bagnet/render.h>

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace bagnet {
namespace {

std::array<double, 3> hex(unsigned value) {
  return {((value >> 16) & 0xff) / 255.0, ((value >> 8) & 0xff) / 255.0, (value & 0xff) / 255.0};
}

Colormap from_hex(std::string name, bool diverging, std::vector<unsigned> codes, bool reversed) {
  Colormap cmap{std::move(name), diverging, {}};
  if (reversed) std::reverse(codes.begin(), codes.end());
  for (unsigned c : codes) cmap.stops.push_back(hex(c));
  return cmap;
}

const std::vector<Colormap>& all_colormaps() {
  // ColorBrewer's 11-class RdBu and PuOr (Brewer, colorbrewer2.org), listed from their low end as
  // matplotlib defines "RdBu"/"PuOr"; the "_r" maps reverse them. PuOr is the colour-blind-safe
  // alternative: its arms differ along the blue-yellow axis, which protan/deutan vision keeps.
  // Viridis (van der Walt & Smith) is defined as a 256-entry table; these are 17 evenly spaced
  // samples of it, which interpolate to within 5/255 of every entry.
  static const std::vector<Colormap> maps = {
      from_hex("rdbu_r", true,
               {0x67001f, 0xb2182b, 0xd6604d, 0xf4a582, 0xfddbc7, 0xf7f7f7, 0xd1e5f0, 0x92c5de, 0x4393c3, 0x2166ac,
                0x053061},
               true),
      from_hex("puor_r", true,
               {0x7f3b08, 0xb35806, 0xe08214, 0xfdb863, 0xfee0b6, 0xf7f7f7, 0xd8daeb, 0xb2abd2, 0x8073ac, 0x542788,
                0x2d004b},
               true),
      from_hex("viridis", false,
               {0x440154, 0x48186a, 0x472d7b, 0x424086, 0x3b528b, 0x33638d, 0x2c728e, 0x26828e, 0x21918c, 0x1fa088,
                0x28ae80, 0x3fbc73, 0x5ec962, 0x84d44b, 0xaddc30, 0xd8e219, 0xfde725},
               false),
      from_hex("greys", false, {0xffffff, 0xf0f0f0, 0xd9d9d9, 0xbdbdbd, 0x969696, 0x737373, 0x525252, 0x252525, 0x000000},
               false),
  };
  return maps;
}

}  // namespace

cv::Vec3b Colormap::rgb(double t) const {
  if (std::isnan(t)) t = 0.5;
  t = std::clamp(t, 0.0, 1.0);
  const double x = t * double(stops.size() - 1);
  const size_t i = std::min(static_cast<size_t>(x), stops.size() - 2);
  const double f = x - double(i);
  cv::Vec3b out;
  for (int c = 0; c < 3; ++c) {
    const double v = stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f;
    out[c] = static_cast<uchar>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
  }
  return out;
}

const Colormap& find_colormap(const std::string& name) {
  std::string wanted = name;
  std::transform(wanted.begin(), wanted.end(), wanted.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& cmap : all_colormaps())
    if (cmap.name == wanted) return cmap;
  std::string known;
  for (const auto& n : colormap_names()) known += (known.empty() ? "" : ", ") + n;
  fail(ErrorKind::InvalidArgument, "unknown colour map '", name, "' (known: ", known, ")");
}

std::vector<std::string> colormap_names() {
  std::vector<std::string> names;
  for (const auto& cmap : all_colormaps()) names.push_back(cmap.name);
  return names;
}

ScaleSpec parse_scale(const std::string& text) {
  if (text == "per-image") return {};
  if (text == "global") return {ScaleMode::Global, 0};
  if (text.rfind("fixed:", 0) == 0) {
    const std::string number = text.substr(6);
    try {
      size_t used = 0;
      const double v = std::stod(number, &used);
      if (used == number.size() && std::isfinite(v) && v > 0) return {ScaleMode::Fixed, v};
    } catch (const std::exception&) {
    }
  }
  fail(ErrorKind::InvalidArgument, "scale must be per-image, global or fixed:V with V > 0, got '", text, "'");
}

double abs_percentile(const std::vector<torch::Tensor>& maps, double percentile) {
  BAGNET_CHECK(percentile >= 0 && percentile <= 100, ErrorKind::InvalidArgument,
               "percentile must be in [0, 100], got ", percentile);
  std::vector<double> values;
  for (const auto& m : maps) {
    const torch::Tensor flat = m.detach().to(torch::kCPU, torch::kDouble).contiguous().view(-1);
    const double* p = flat.data_ptr<double>();
    for (int64_t i = 0; i < flat.numel(); ++i)
      if (std::isfinite(p[i])) values.push_back(std::abs(p[i]));
  }
  if (values.empty()) return 0;
  // numpy's default ("linear"): position (n - 1) * p / 100 between the sorted values.
  const double position = double(values.size() - 1) * percentile / 100.0;
  const size_t lo = static_cast<size_t>(std::floor(position));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  std::nth_element(values.begin(), values.begin() + lo, values.end());
  const double low = values[lo];
  const double high = hi == lo ? low : *std::min_element(values.begin() + lo + 1, values.end());
  return low + (high - low) * (position - double(lo));
}

double ColorScale::position(double value) const {
  if (std::isnan(value)) return 0.5;
  return std::clamp((value - low) / (high - low), 0.0, 1.0);
}

ColorScale make_scale(double clip, const Colormap& cmap, bool non_negative) {
  BAGNET_CHECK(std::isfinite(clip) && clip >= 0, ErrorKind::InvalidArgument, "clip must be finite and >= 0, got ", clip);
  if (clip == 0) clip = 1;
  ColorScale scale;
  scale.clip = clip;
  scale.high = clip;
  scale.low = (cmap.diverging || !non_negative) ? -clip : 0.0;
  return scale;
}

std::vector<double> colorbar_ticks(const ColorScale& scale, int max_ticks) {
  BAGNET_CHECK(max_ticks >= 2, ErrorKind::InvalidArgument, "a colour bar needs at least 2 ticks, got ", max_ticks);
  const double range = scale.high - scale.low;
  std::vector<double> ticks{scale.low};
  if (range > 0 && max_ticks > 2) {
    const double raw = range / double(max_ticks - 1);
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double step = 10 * magnitude;
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
      if (m * magnitude >= raw) {
        step = m * magnitude;
        break;
      }
    // Labels closer than this to an end would overprint the end's label.
    const double margin = 0.12 * range;
    for (double k = std::ceil(scale.low / step); k * step < scale.high; k += 1) {
      const double v = (std::abs(k) < 0.5) ? 0.0 : k * step;
      if (v - scale.low < margin || scale.high - v < margin) continue;
      if (static_cast<int>(ticks.size()) + 1 >= max_ticks) break;
      ticks.push_back(v);
    }
  }
  ticks.push_back(scale.high);
  return ticks;
}

std::string format_tick(double value) {
  if (value == 0) return "0";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", value);
  return buffer;
}

}  // namespace bagnet
