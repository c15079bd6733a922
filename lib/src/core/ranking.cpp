#include <bagnet/error.h>
#include <bagnet/ranking.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace bagnet {

namespace {

// Total order "a ranks before b": by value in the sign's direction, then by position, so results
// never depend on the sort algorithm or the order images arrive in.
bool ranks_before(double va, int64_t sa, int64_t ra, int64_t ca, double vb, int64_t sb, int64_t rb, int64_t cb,
                  Sign sign) {
  if (va != vb) return sign == Sign::Positive ? va > vb : va < vb;
  if (sa != sb) return sa < sb;
  if (ra != rb) return ra < rb;
  return ca < cb;
}

bool ranks_before(const RankedPatch& a, const RankedPatch& b, Sign sign) {
  return ranks_before(a.patch.value, a.sample, a.patch.row, a.patch.col, b.patch.value, b.sample, b.patch.row,
                      b.patch.col, sign);
}

bool suppressed(const Box& box, const std::vector<PatchScore>& accepted, const RankOptions& options) {
  for (const auto& other : accepted) {
    if (options.max_iou < 1.0 && box_iou(box, other.box) > options.max_iou) return true;
    if (options.min_distance > 0) {
      const double dy = (box.top + box.height / 2.0) - (other.box.top + other.box.height / 2.0);
      const double dx = (box.left + box.width / 2.0) - (other.box.left + other.box.width / 2.0);
      if (std::sqrt(dy * dy + dx * dx) < options.min_distance) return true;
    }
  }
  return false;
}

}  // namespace

double box_iou(const Box& a, const Box& b) {
  const int64_t h = std::min(a.bottom(), b.bottom()) - std::max(a.top, b.top);
  const int64_t w = std::min(a.right(), b.right()) - std::max(a.left, b.left);
  const double inter = (h > 0 && w > 0) ? double(h) * double(w) : 0.0;
  const double uni = double(a.height) * double(a.width) + double(b.height) * double(b.width) - inter;
  return uni > 0 ? inter / uni : 0.0;
}

std::vector<PatchScore> top_patches(const torch::Tensor& map, const MapGeometry& geometry, const RankOptions& options,
                                    Sign sign) {
  BAGNET_CHECK(map.defined() && map.dim() == 2, ErrorKind::InvalidArgument, "top_patches: expected a map [H', W'], got ",
               map.defined() ? map.dim() : 0, " dimensions");
  BAGNET_CHECK(map.size(0) == geometry.rows && map.size(1) == geometry.cols, ErrorKind::InvalidArgument,
               "top_patches: map is ", map.size(0), "x", map.size(1), ", geometry says ", geometry.rows, "x",
               geometry.cols);
  BAGNET_CHECK(options.k >= 0, ErrorKind::InvalidArgument, "top_patches: k must be >= 0, got ", options.k);
  const torch::Tensor values = map.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const double* v = values.data_ptr<double>();
  const int64_t cols = geometry.cols, n = geometry.rows * geometry.cols;
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    if (!options.only_signed || (sign == Sign::Positive ? v[i] > 0 : v[i] < 0)) order.push_back(i);
  auto before = [&](int64_t a, int64_t b) {
    return ranks_before(v[a], 0, a / cols, a % cols, v[b], 0, b / cols, b % cols, sign);
  };
  const bool suppress = options.max_iou < 1.0 || options.min_distance > 0;
  if (!suppress && static_cast<int64_t>(order.size()) > options.k) {
    std::partial_sort(order.begin(), order.begin() + options.k, order.end(), before);
    order.resize(static_cast<size_t>(options.k));
  } else {
    std::sort(order.begin(), order.end(), before);
  }
  std::vector<PatchScore> out;
  for (const int64_t i : order) {
    if (static_cast<int64_t>(out.size()) >= options.k) break;
    PatchScore p{i / cols, i % cols, v[i], geometry.cell_box(i / cols, i % cols)};
    if (suppress && suppressed(p.box, out, options)) continue;
    out.push_back(p);
  }
  return out;
}

DatasetTopK::DatasetTopK(std::vector<int64_t> classes, int64_t k, int64_t per_image, Sign sign, RankOptions suppression)
    : classes_(std::move(classes)), k_(k), per_image_(per_image), sign_(sign), suppression_(suppression),
      heaps_(classes_.size()) {
  BAGNET_CHECK(k >= 1, ErrorKind::InvalidArgument, "dataset top-k: k must be >= 1, got ", k);
  BAGNET_CHECK(per_image >= 0, ErrorKind::InvalidArgument, "dataset top-k: patches per image must be >= 0, got ",
               per_image);
  BAGNET_CHECK(!classes_.empty(), ErrorKind::InvalidArgument, "dataset top-k: no classes to track");
}

void DatasetTopK::add(int64_t sample, const torch::Tensor& maps, const MapGeometry& geometry) {
  BAGNET_CHECK(maps.dim() == 3 && maps.size(0) == static_cast<int64_t>(classes_.size()), ErrorKind::InvalidArgument,
               "dataset top-k: expected maps [", classes_.size(), ", H', W'], got ", maps.sizes());
  RankOptions options = suppression_;
  // No more than k patches of one image can ever be held, so ranking more is wasted work.
  options.k = per_image_ > 0 ? std::min(per_image_, k_) : k_;
  auto worse_on_top = [this](const RankedPatch& a, const RankedPatch& b) { return ranks_before(a, b, sign_); };
  for (size_t c = 0; c < classes_.size(); ++c) {
    auto& heap = heaps_[c];
    for (const PatchScore& p : top_patches(maps[static_cast<int64_t>(c)], geometry, options, sign_)) {
      RankedPatch candidate{sample, classes_[c], p};
      if (static_cast<int64_t>(heap.size()) < k_) {
        heap.push_back(candidate);
        std::push_heap(heap.begin(), heap.end(), worse_on_top);
      } else if (ranks_before(candidate, heap.front(), sign_)) {
        std::pop_heap(heap.begin(), heap.end(), worse_on_top);
        heap.back() = candidate;
        std::push_heap(heap.begin(), heap.end(), worse_on_top);
      } else {
        break;  // the image's patches come best first: the rest cannot enter either
      }
    }
  }
  ++images_;
}

std::vector<RankedPatch> DatasetTopK::result(size_t k) const {
  BAGNET_CHECK(k < classes_.size(), ErrorKind::InvalidArgument, "dataset top-k: class slot ", k, " of ",
               classes_.size());
  std::vector<RankedPatch> out = heaps_[k];
  std::sort(out.begin(), out.end(), [this](const RankedPatch& a, const RankedPatch& b) { return ranks_before(a, b, sign_); });
  return out;
}

size_t DatasetTopK::held() const {
  size_t n = 0;
  for (const auto& heap : heaps_) n += heap.size();
  return n;
}

}  // namespace bagnet
