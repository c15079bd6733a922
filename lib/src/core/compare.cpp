// One image's comparison between a BagNet and another network (compare.h): masks built from the
// BagNet's evidence map of the explained class, every masked image through both models in batches.
#include <bagnet/compare.h>
#include <bagnet/error.h>
#include <bagnet/ranking.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace bagnet {

namespace {

using torch::indexing::Slice;

// What masked pixels become: the image's mean colour, or its blur (sigma q/4, edges replicated).
torch::Tensor fill_image(const torch::Tensor& x, MaskFill fill, int64_t q) {
  if (fill == MaskFill::Mean) return x.mean({2, 3}, true).expand_as(x).contiguous();
  const double sigma = std::max(1.0, q / 4.0);
  const int64_t radius = static_cast<int64_t>(std::ceil(2.5 * sigma));
  auto taps = torch::arange(-radius, radius + 1, x.options()).pow(2).div(-2 * sigma * sigma).exp();
  taps = taps / taps.sum();
  const int64_t c = x.size(1);
  namespace F = torch::nn::functional;
  auto padded = F::pad(x, F::PadFuncOptions({radius, radius, radius, radius}).mode(torch::kReplicate));
  auto rows = F::conv2d(padded, taps.view({1, 1, 1, -1}).repeat({c, 1, 1, 1}), F::Conv2dFuncOptions().groups(c));
  return F::conv2d(rows, taps.view({1, 1, -1, 1}).repeat({c, 1, 1, 1}), F::Conv2dFuncOptions().groups(c)).contiguous();
}

torch::Tensor box_mask(const std::vector<Box>& boxes, int64_t h, int64_t w) {
  auto mask = torch::zeros({1, 1, h, w}, torch::kBool);
  for (const Box& b : boxes) mask.index_put_({0, 0, Slice(b.top, b.bottom()), Slice(b.left, b.right())}, true);
  return mask;
}

bool overlaps(const Box& a, const Box& b) {
  return a.top < b.bottom() && b.top < a.bottom() && a.left < b.right() && b.left < a.right();
}

// No patch of the BagNet sees both boxes: along some axis the gap between them is at least q - 1.
bool distant(const Box& a, const Box& b, int64_t q) {
  const int64_t gap_y = std::max(b.top - a.bottom(), a.top - b.bottom());
  const int64_t gap_x = std::max(b.left - a.right(), a.left - b.right());
  return std::max(gap_y, gap_x) >= q - 1;
}

// Every image of `images` through `run`, `batch` at a time: [M, K] logits on the CPU in double.
torch::Tensor run_batched(const std::vector<torch::Tensor>& images, int64_t batch,
                          const std::function<torch::Tensor(const torch::Tensor&)>& run) {
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < images.size(); i += static_cast<size_t>(batch)) {
    const size_t end = std::min(images.size(), i + static_cast<size_t>(batch));
    out.push_back(run(torch::cat(std::vector<torch::Tensor>(images.begin() + i, images.begin() + end))).to(torch::kCPU, torch::kDouble));
  }
  return torch::cat(out);
}

// Cells in the order of a uniformly random permutation, keeping those whose box does not overlap
// one kept before, until `k` are kept.
std::vector<int64_t> random_disjoint_cells(const MapGeometry& g, int64_t k, std::mt19937_64& rng) {
  std::vector<int64_t> order(static_cast<size_t>(g.rows * g.cols));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<int64_t> kept;
  for (int64_t cell : order) {
    if (static_cast<int64_t>(kept.size()) == k) break;
    const Box b = g.cell_box(cell / g.cols, cell % g.cols);
    if (std::none_of(kept.begin(), kept.end(), [&](int64_t o) { return overlaps(b, g.cell_box(o / g.cols, o % g.cols)); }))
      kept.push_back(cell);
  }
  return kept;
}

std::vector<double> column(const torch::Tensor& probabilities, int64_t first, int64_t count, int64_t cls) {
  std::vector<double> v;
  for (int64_t i = 0; i < count; ++i) v.push_back(probabilities[first + i][cls].item<double>());
  return v;
}

}  // namespace

double curve_area(const std::vector<double>& x, const std::vector<double>& y) {
  BAGNET_CHECK(x.size() == y.size(), ErrorKind::InvalidArgument, "curve_area: ", x.size(), " x values, ", y.size(), " y values");
  double area = 0;
  for (size_t i = 1; i < x.size(); ++i) area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2;
  return area;
}

ImageComparison compare_image(BagNet& net, OtherModel& other, const torch::Tensor& input, std::optional<int64_t> label,
                              const CompareOptions& options, uint64_t image_seed) {
  BAGNET_CHECK(input.dim() == 4 && input.size(0) == 1, ErrorKind::InvalidArgument, "compare_image: input ", input.sizes(),
               ", expected [1, C, H, W]");
  BAGNET_CHECK(options.steps >= 1 && options.batch >= 1 && options.pairs >= 0 && !options.ks.empty(),
               ErrorKind::InvalidArgument, "compare options: steps and batch must be >= 1, pairs >= 0, ks not empty");
  for (int64_t k : options.ks)
    BAGNET_CHECK(k >= 1, ErrorKind::InvalidArgument, "compare options: patch counts must be >= 1, got ", k);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = input.to(torch::kFloat).contiguous();
  const int64_t h = x.size(2), w = x.size(3);
  const MapGeometry g = map_geometry(net->arch(), h, w);
  const int64_t q = g.patch, cells = g.rows * g.cols;
  const torch::Tensor patch_maps = net->patch_logits(net->features(x)).to(torch::kCPU, torch::kDouble)[0];  // [K, H', W']
  const torch::Tensor bag = patch_maps.flatten(1).mean(1);
  const torch::Tensor other_logits = other.logits(x).to(torch::kDouble)[0];

  ImageComparison r;
  r.label = label;
  r.bagnet_predicted = bag.argmax().item<int64_t>();
  r.other_predicted = other_logits.argmax().item<int64_t>();
  const int64_t c = label.value_or(r.bagnet_predicted);
  BAGNET_CHECK(c >= 0 && c < patch_maps.size(0), ErrorKind::InvalidArgument, "label ", c, " is not one of the model's ",
               patch_maps.size(0), " classes");
  r.explained_class = c;
  const torch::Tensor map = patch_maps[c];
  const torch::Tensor flat = map.flatten();
  const torch::Tensor fill = fill_image(x, options.fill, q);
  auto masked = [&](const std::vector<Box>& boxes) { return torch::where(box_mask(boxes, h, w).to(x.device()), fill, x); };
  auto box_of = [&](int64_t cell) { return g.cell_box(cell / g.cols, cell % g.cols); };

  // Informative: the best cells for class c whose boxes do not overlap; random: as many, seeded.
  const int64_t max_k = *std::max_element(options.ks.begin(), options.ks.end());
  RankOptions disjoint;
  disjoint.k = max_k;
  disjoint.max_iou = 0;
  disjoint.only_signed = false;
  const std::vector<PatchScore> informative = top_patches(map, g, disjoint, Sign::Positive);
  std::mt19937_64 rng(image_seed);
  r.random_cells = random_disjoint_cells(g, max_k, rng);

  // Every masked image of this sample, in one list: sensitivity, interaction, deletion, insertion.
  std::vector<torch::Tensor> images{x};
  std::vector<std::vector<int64_t>> removed_cells{{}};  // bag-level: the cells leaving the bag
  for (int64_t k : options.ks) {
    ImageComparison::KDrops d;
    d.k = k;
    d.measured = k <= static_cast<int64_t>(informative.size()) && k <= static_cast<int64_t>(r.random_cells.size());
    r.sensitivity.push_back(d);
    if (!d.measured) continue;
    std::vector<Box> inf_boxes, rand_boxes;
    std::vector<int64_t> inf_cells;
    for (int64_t i = 0; i < k; ++i) {
      inf_boxes.push_back(informative[i].box);
      inf_cells.push_back(informative[i].row * g.cols + informative[i].col);
      rand_boxes.push_back(box_of(r.random_cells[i]));
    }
    images.push_back(masked(inf_boxes));
    removed_cells.push_back(inf_cells);
    images.push_back(masked(rand_boxes));
    removed_cells.push_back({});
  }
  // Interactions: pairs of informative patches no BagNet patch sees together, in rank order.
  const size_t pair_start = images.size();
  std::vector<std::pair<size_t, size_t>> pairs;
  for (size_t i = 0; i < informative.size() && static_cast<int64_t>(pairs.size()) < options.pairs; ++i)
    for (size_t j = i + 1; j < informative.size() && static_cast<int64_t>(pairs.size()) < options.pairs; ++j)
      if (distant(informative[i].box, informative[j].box, q)) pairs.emplace_back(i, j);
  for (const auto& [i, j] : pairs) {
    images.push_back(masked({informative[i].box}));
    images.push_back(masked({informative[j].box}));
    images.push_back(masked({informative[i].box, informative[j].box}));
  }
  // Deletion and insertion over all cells, by evidence and in a random order. A cell stands for the
  // stride x stride block at the centre of its patch (border blocks reach the image's edges), so
  // the blocks tile the image and a fraction of the cells is that fraction of the pixels.
  auto block_of = [&](int64_t cell) {
    const int64_t i = cell / g.cols, j = cell % g.cols, s = g.stride, margin = (q - s) / 2;
    const int64_t top = i == 0 ? 0 : margin + i * s, left = j == 0 ? 0 : margin + j * s;
    const int64_t bottom = i == g.rows - 1 ? h : margin + (i + 1) * s, right = j == g.cols - 1 ? w : margin + (j + 1) * s;
    return Box{top, left, bottom - top, right - left};
  };
  RankOptions all_cells;
  all_cells.k = cells;
  all_cells.only_signed = false;
  std::vector<int64_t> by_evidence;
  for (const auto& p : top_patches(map, g, all_cells, Sign::Positive)) by_evidence.push_back(p.row * g.cols + p.col);
  std::vector<int64_t> shuffled(static_cast<size_t>(cells));
  std::iota(shuffled.begin(), shuffled.end(), 0);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const size_t curve_start = images.size();
  for (const auto* order : {&by_evidence, &shuffled}) {
    for (bool insertion : {false, true}) {
      for (int64_t s = 0; s <= options.steps; ++s) {
        const int64_t m = static_cast<int64_t>(std::llround(double(s) * double(cells) / double(options.steps)));
        std::vector<Box> boxes;
        for (int64_t i = 0; i < m; ++i) boxes.push_back(block_of((*order)[i]));
        const torch::Tensor mask = box_mask(boxes, h, w).to(x.device());
        images.push_back(insertion ? torch::where(mask, x, fill) : torch::where(mask, fill, x));
      }
    }
  }

  const torch::Tensor bagnet_out = run_batched(images, options.batch, [&](const torch::Tensor& b) { return net->forward(b); });
  const torch::Tensor other_out = run_batched(images, options.batch, [&](const torch::Tensor& b) { return other.logits(b); });
  auto drop = [&](const torch::Tensor& out, size_t i) { return out[0][c].item<double>() - out[i][c].item<double>(); };

  size_t next = 1;
  const double bag_c = bag[c].item<double>();
  for (auto& d : r.sensitivity) {
    if (!d.measured) continue;
    const size_t inf = next, rnd = next + 1;
    d.other_informative = drop(other_out, inf);
    d.other_random = drop(other_out, rnd);
    d.bagnet_informative = drop(bagnet_out, inf);
    d.bagnet_random = drop(bagnet_out, rnd);
    const auto& gone = removed_cells[inf];
    const double removed_sum = flat.index_select(0, torch::tensor(gone, torch::kLong)).sum().item<double>();
    d.bagnet_bag = bag_c - (flat.sum().item<double>() - removed_sum) / double(cells - static_cast<int64_t>(gone.size()));
    next += 2;
  }
  for (size_t p = 0; p < pairs.size(); ++p) {
    const size_t a = pair_start + 3 * p, b = a + 1, both = a + 2;
    r.pairs.push_back({drop(other_out, both), drop(other_out, a) + drop(other_out, b), drop(bagnet_out, both),
                       drop(bagnet_out, a) + drop(bagnet_out, b)});
  }
  const torch::Tensor bagnet_p = torch::softmax(bagnet_out, 1), other_p = torch::softmax(other_out, 1);
  const int64_t n = options.steps + 1;
  for (int64_t s = 0; s < n; ++s) r.fractions.push_back(double(s) / double(options.steps));
  const int64_t start = static_cast<int64_t>(curve_start);
  r.deletion_bagnet = column(bagnet_p, start, n, c);
  r.deletion_other = column(other_p, start, n, c);
  r.insertion_bagnet = column(bagnet_p, start + n, n, c);
  r.insertion_other = column(other_p, start + n, n, c);
  r.deletion_random_bagnet = column(bagnet_p, start + 2 * n, n, c);
  r.deletion_random_other = column(other_p, start + 2 * n, n, c);
  r.insertion_random_bagnet = column(bagnet_p, start + 3 * n, n, c);
  r.insertion_random_other = column(other_p, start + 3 * n, n, c);
  return r;
}

}  // namespace bagnet
