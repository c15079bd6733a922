// Patch ranking on hand-made maps: order, ties, signs, suppression, boxes from the geometry, and
// the streaming dataset top-k (exact result, bounded number of held patches, per-image limit).
#include <bagnet/error.h>
#include <bagnet/ranking.h>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <algorithm>
#include <tuple>

using namespace bagnet;

namespace {

MapGeometry geometry(int64_t rows, int64_t cols, int64_t stride = 8, int64_t patch = 17) {
  MapGeometry g;
  g.rows = rows;
  g.cols = cols;
  g.stride = stride;
  g.patch = patch;
  g.input_height = (rows - 1) * stride + patch;
  g.input_width = (cols - 1) * stride + patch;
  return g;
}

}  // namespace

TEST_CASE("top patches of a hand-made map: order, ties, signs and boxes") {
  // 3 x 4 map; value 5 twice (tie broken by position), negatives at (2, 0) and (0, 3).
  const torch::Tensor map = torch::tensor({{1.0, 5.0, 0.0, -4.0},  //
                                           {2.0, 3.0, 5.0, 0.5},   //
                                           {-7.0, 0.0, 1.5, 0.25}});
  const MapGeometry g = geometry(3, 4);
  RankOptions opt;
  opt.k = 3;
  auto best = top_patches(map, g, opt, Sign::Positive);
  REQUIRE(best.size() == 3);
  CHECK(std::tie(best[0].row, best[0].col) == std::make_tuple(int64_t(0), int64_t(1)));
  CHECK(std::tie(best[1].row, best[1].col) == std::make_tuple(int64_t(1), int64_t(2)));
  CHECK(std::tie(best[2].row, best[2].col) == std::make_tuple(int64_t(1), int64_t(1)));
  CHECK(best[0].value == 5.0);
  CHECK((best[1].box == Box{8, 16, 17, 17}));
  CHECK(best[2].value == 3.0);

  auto worst = top_patches(map, g, opt, Sign::Negative);
  REQUIRE(worst.size() == 2);  // only two negative cells: zeros are neither
  CHECK(worst[0].value == -7.0);
  CHECK((worst[0].box == Box{16, 0, 17, 17}));
  CHECK(worst[1].value == -4.0);

  opt.only_signed = false;
  opt.k = 100;
  CHECK(top_patches(map, g, opt, Sign::Negative).size() == 12);
  opt.k = 0;
  CHECK(top_patches(map, g, opt, Sign::Positive).empty());
  opt.k = 2;
  CHECK_THROWS_AS(top_patches(map.t(), g, opt, Sign::Positive), Error);
}

TEST_CASE("suppression of overlapping patches") {
  const MapGeometry g = geometry(4, 4, 8, 17);  // neighbours overlap: IoU of horizontal neighbours = 153/425
  CHECK(box_iou(g.cell_box(0, 0), g.cell_box(0, 1)) == doctest::Approx(9.0 * 17 / (2 * 289 - 9.0 * 17)));
  CHECK(box_iou(g.cell_box(0, 0), g.cell_box(0, 3)) == 0.0);
  CHECK(box_iou(g.cell_box(1, 1), g.cell_box(1, 1)) == 1.0);
  // The best cells form a horizontal run in row 0; the next best sits far away.
  const torch::Tensor map = torch::tensor({{9.0, 8.0, 7.0, 1.0},  //
                                           {0.1, 0.1, 0.1, 0.1},  //
                                           {0.1, 0.1, 0.1, 0.1},  //
                                           {0.1, 0.1, 0.1, 6.0}});
  RankOptions opt;
  opt.k = 3;
  opt.max_iou = 0.3;  // (0,1) overlaps (0,0) with IoU 0.36: suppressed; (0,2) only by 0.03
  auto kept = top_patches(map, g, opt, Sign::Positive);
  REQUIRE(kept.size() == 3);
  CHECK(std::make_pair(kept[0].row, kept[0].col) == std::make_pair(int64_t(0), int64_t(0)));
  CHECK(std::make_pair(kept[1].row, kept[1].col) == std::make_pair(int64_t(0), int64_t(2)));
  CHECK(std::make_pair(kept[2].row, kept[2].col) == std::make_pair(int64_t(3), int64_t(3)));
  opt.max_iou = 1.0;
  opt.min_distance = 20;  // centres 8 and 16 px apart are too close, 24 px and more are fine
  kept = top_patches(map, g, opt, Sign::Positive);
  REQUIRE(kept.size() == 3);
  CHECK(std::make_pair(kept[1].row, kept[1].col) == std::make_pair(int64_t(3), int64_t(3)));
  CHECK(std::make_pair(kept[2].row, kept[2].col) == std::make_pair(int64_t(0), int64_t(3)));
}

TEST_CASE("dataset top-k equals the top-k of everything, and holds at most k per class") {
  torch::manual_seed(7);
  const MapGeometry g = geometry(5, 6);
  const std::vector<int64_t> classes{4, 1};
  const int64_t k = 7;
  DatasetTopK top(classes, k);
  std::vector<std::tuple<double, int64_t, int64_t, int64_t>> all0, all1;
  for (int64_t image = 0; image < 300; ++image) {
    const torch::Tensor maps = torch::randn({2, 5, 6}, torch::kDouble);
    top.add(image, maps, g);
    CHECK(top.held() <= static_cast<size_t>(k) * classes.size());
    for (int64_t i = 0; i < 30; ++i) {
      all0.emplace_back(-maps[0][i / 6][i % 6].item<double>(), image, i / 6, i % 6);
      all1.emplace_back(-maps[1][i / 6][i % 6].item<double>(), image, i / 6, i % 6);
    }
  }
  CHECK(top.held() == 14);
  CHECK(top.images() == 300);
  std::sort(all0.begin(), all0.end());
  std::sort(all1.begin(), all1.end());
  for (size_t slot = 0; slot < 2; ++slot) {
    const auto& all = slot == 0 ? all0 : all1;
    const auto result = top.result(slot);
    REQUIRE(result.size() == static_cast<size_t>(k));
    for (int64_t r = 0; r < k; ++r) {
      CHECK(result[r].cls == classes[slot]);
      CHECK(result[r].patch.value == -std::get<0>(all[r]));
      CHECK(result[r].sample == std::get<1>(all[r]));
      CHECK(result[r].patch.row == std::get<2>(all[r]));
      CHECK(result[r].patch.col == std::get<3>(all[r]));
    }
  }
}

TEST_CASE("dataset top-k: per-image limit, negative sign, deterministic ties") {
  const MapGeometry g = geometry(2, 2);
  DatasetTopK one(std::vector<int64_t>{0}, 3, 1);
  one.add(0, torch::tensor({{{9.0, 8.0}, {7.0, 6.0}}}), g);  // only its best may enter
  one.add(1, torch::tensor({{{1.0, 2.0}, {3.0, 4.0}}}), g);
  one.add(2, torch::tensor({{{5.0, 0.0}, {0.0, 0.0}}}), g);
  auto r = one.result(0);
  REQUIRE(r.size() == 3);
  CHECK(r[0].sample == 0);
  CHECK(r[0].patch.value == 9.0);
  CHECK(r[1].sample == 2);
  CHECK(r[2].sample == 1);
  CHECK(r[2].patch.value == 4.0);

  DatasetTopK against(std::vector<int64_t>{3}, 2, 0, Sign::Negative);
  against.add(5, torch::tensor({{{-1.0, -1.0}, {2.0, -3.0}}}), g);
  against.add(4, torch::tensor({{{-1.0, 0.0}, {0.0, 0.0}}}), g);
  r = against.result(0);
  REQUIRE(r.size() == 2);
  CHECK(r[0].patch.value == -3.0);
  CHECK(r[1].sample == 4);  // three cells at -1: the smallest sample index wins the tie
  CHECK(against.held() == 2);

  CHECK_THROWS_AS(DatasetTopK(std::vector<int64_t>{0}, 0), Error);
  CHECK_THROWS_AS(one.add(3, torch::zeros({2, 2, 2}), g), Error);
}
