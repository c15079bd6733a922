#include <bagnet/error.h>
#include <bagnet/evidence.h>

#include "classifier_rows.h"
#include "cpu_block_cache.h"
#include "folded_net.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <optional>

namespace bagnet {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Peak bytes of one tile of `tile` x `tile` output cells: about two activations of the widest layer
// at the tile's resolution plus margin (measured: a single 224x224 BagNet-33 tile peaks at ~1.1 GB
// of activations), and the class logits.
double tile_bytes(const Arch& arch, int64_t tile, int64_t q, int64_t stride, int64_t classes) {
  int64_t widest = arch.stem_width;
  for (size_t s = 0; s < arch.widths.size(); ++s) widest = std::max(widest, arch.widths[s] * arch.expansion);
  const double side = double(tile) + double(q) / double(stride);
  return 4.0 * (2.0 * double(widest) * side * side + double(classes) * double(tile) * double(tile));
}

// Freed activation blocks kept for reuse (see cpu_block_cache.h): what the memory budget leaves
// beside the tile, at most half a tile's activations, which bounds the extra resident memory (224²
// BagNet-33: 2.08 GB peak instead of 1.56 GB; keeping a whole tile's worth gave 2.64 GB).
std::size_t tile_cache_bytes(const Arch& arch, const DenseOptions& o, int64_t tile, int64_t q, int64_t classes) {
  const double need = tile_bytes(arch, tile, q, o.stride, classes);
  const double spare = double(o.max_memory_mb) * 1024 * 1024 - need;
  return static_cast<std::size_t>(std::clamp(spare, 0.0, need / 2));
}

int64_t choose_tile(const Arch& arch, const DenseOptions& o, int64_t q, int64_t classes, int64_t rows, int64_t cols) {
  if (o.tile > 0) return o.tile;
  BAGNET_CHECK(o.max_memory_mb >= 64, ErrorKind::InvalidArgument, "max memory must be at least 64 MB, got ",
               o.max_memory_mb);
  const double budget = double(o.max_memory_mb) * 1024 * 1024;
  int64_t tile = std::max(rows, cols);
  while (tile > 8 && tile_bytes(arch, tile, q, o.stride, classes) > budget) tile = tile * 7 / 8;
  return std::max<int64_t>(tile, 1);
}

void report(const ProgressCallback& callback, int64_t done, int64_t total, const std::string& stage) {
  if (callback) callback(Progress{done, total, stage});
}

torch::Tensor shared(BagNet& net, const torch::Tensor& padded, const DenseOptions& o, const std::vector<int64_t>& classes,
                     int64_t rows, int64_t cols, int64_t q, int64_t& tiles_used) {
  const detail::FoldedNet folded(*net, o.stride, detail::DenseForm::SpaceToBatch, net->precision());
  const int64_t k = static_cast<int64_t>(classes.size());
  const int64_t tile = choose_tile(net->arch(), o, q, k, rows, cols);
  std::optional<detail::CpuBlockCacheScope> block_cache;
  if (padded.device().is_cpu()) block_cache.emplace(tile_cache_bytes(net->arch(), o, tile, q, k));
  torch::Tensor out = torch::empty({padded.size(0), k, rows, cols});
  const int64_t tiles_y = ceil_div(rows, tile), tiles_x = ceil_div(cols, tile);
  tiles_used = tiles_y * tiles_x;
  const std::vector<int64_t> subset = static_cast<int64_t>(classes.size()) == net->arch().num_classes ? std::vector<int64_t>{} : classes;
  int64_t done = 0;
  for (int64_t ty = 0; ty < tiles_y; ++ty) {
    for (int64_t tx = 0; tx < tiles_x; ++tx) {
      const int64_t r0 = ty * tile, c0 = tx * tile;
      const int64_t h = std::min(tile, rows - r0), w = std::min(tile, cols - c0);
      // Output cells [r0, r0+h) need padded rows [s*r0, s*(r0+h-1) + q).
      const torch::Tensor piece = padded.slice(2, o.stride * r0, o.stride * (r0 + h - 1) + q)
                                      .slice(3, o.stride * c0, o.stride * (c0 + w - 1) + q)
                                      .contiguous(torch::MemoryFormat::ChannelsLast);
      const torch::Tensor logits = folded.logits(piece, subset);
      BAGNET_CHECK(logits.size(2) == h && logits.size(3) == w, ErrorKind::Runtime, "internal: dense tile is ",
                   logits.size(2), "x", logits.size(3), ", expected ", h, "x", w);
      out.slice(2, r0, r0 + h).slice(3, c0, c0 + w).copy_(logits.to(torch::kCPU));
      report(o.on_progress, ++done, tiles_used, "dense map tiles");
    }
  }
  return out;
}

torch::Tensor patchwise(BagNet& net, const torch::Tensor& padded, const DenseOptions& o,
                        const std::vector<int64_t>& classes, int64_t rows, int64_t cols, int64_t q) {
  const int64_t n = padded.size(0), k = static_cast<int64_t>(classes.size());
  torch::Tensor out = torch::empty({n, k, rows, cols});
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      // All patches of map row r: [cols, C, q, q], each through the whole network.
      const torch::Tensor band = padded[i].slice(1, o.stride * r, o.stride * r + q);
      const torch::Tensor patches =
          band.unfold(2, q, o.stride).slice(2, 0, cols).permute({2, 0, 1, 3}).contiguous();
      const torch::Tensor logits = net->patch_logits(net->features(patches), classes);  // [cols, K, 1, 1]
      out[i].select(1, r).copy_(logits.flatten(1).t().to(torch::kCPU));
      report(o.on_progress, i * rows + r + 1, n * rows, "patchwise rows");
    }
  }
  return out;
}

}  // namespace

double dense_flops(const Arch& arch, int64_t height, int64_t width, int64_t stride, int64_t classes) {
  const int64_t q = receptive_field(arch);
  const int64_t rows = ceil_div(height, stride), cols = ceil_div(width, stride);
  return detail::folded_flops(arch, stride * (rows - 1) + q, stride * (cols - 1) + q, stride, classes);
}

double patchwise_flops(const Arch& arch, int64_t height, int64_t width, int64_t stride, int64_t classes) {
  const int64_t q = receptive_field(arch);
  return double(ceil_div(height, stride) * ceil_div(width, stride)) *
         detail::folded_flops(arch, q, q, total_stride(arch), classes);
}

double native_flops(const Arch& arch, int64_t height, int64_t width, int64_t classes) {
  return detail::folded_flops(arch, height, width, total_stride(arch), classes);
}

Box DenseMap::patch_box(int64_t row, int64_t col) const {
  const int64_t half = (patch - 1) / 2;
  return Box{row * stride - half, col * stride - half, patch, patch};
}

std::vector<int64_t> map_strides(const Arch& arch) { return detail::dense_strides(arch); }

int64_t resolve_map_stride(const Arch& arch, const std::string& spec) {
  const auto strides = map_strides(arch);
  if (spec == "native") return total_stride(arch);
  std::string listed;
  for (const int64_t s : strides) listed += (listed.empty() ? "" : ", ") + std::to_string(s);
  int64_t stride = 0;
  try {
    size_t used = 0;
    stride = std::stoll(spec, &used);
    if (used != spec.size()) stride = 0;
  } catch (const std::exception&) {
  }
  BAGNET_CHECK(std::find(strides.begin(), strides.end(), stride) != strides.end(), ErrorKind::InvalidArgument,
               "stride '", spec, "' is not one of this model's map strides: native (", total_stride(arch),
               ") or ", listed, " (1 and the products of its leading layer strides)");
  return stride;
}

DenseMap compute_dense_evidence(BagNet& net, const torch::Tensor& input, const DenseOptions& options) {
  const Arch& arch = net->arch();
  BAGNET_CHECK(input.dim() == 4 && input.size(1) == arch.in_channels, ErrorKind::BadInput,
               "dense evidence input: expected [N, ", arch.in_channels, ", H, W], got ", input.sizes());
  BAGNET_CHECK(input.scalar_type() == torch::kFloat, ErrorKind::BadInput, "dense evidence input: expected float32");
  BAGNET_CHECK(input.size(2) >= 1 && input.size(3) >= 1, ErrorKind::BadInput, "dense evidence input is empty");
  resolve_map_stride(arch, std::to_string(options.stride));  // the one check of strides
  DenseMap map;
  map.patch = receptive_field(arch);
  map.stride = options.stride;
  map.input_height = input.size(2);
  map.input_width = input.size(3);
  map.classes = options.classes;
  if (map.classes.empty())
    for (int64_t c = 0; c < arch.num_classes; ++c) map.classes.push_back(c);
  detail::check_class_indices(map.classes, arch.num_classes);
  const int64_t rows = ceil_div(map.input_height, map.stride), cols = ceil_div(map.input_width, map.stride);
  const int64_t half = (map.patch - 1) / 2;

  torch::NoGradGuard no_grad;
  const auto device = net->parameters().front().device();
  const torch::Tensor padded = torch::constant_pad_nd(input.to(device), {half, half, half, half}, 0);
  if (options.method == DenseMethod::Patchwise) {
    map.logits = patchwise(net, padded, options, map.classes, rows, cols, map.patch);
    map.tiles = 1;
  } else {
    map.logits = shared(net, padded, options, map.classes, rows, cols, map.patch, map.tiles);
  }
  return map;
}

}  // namespace bagnet
