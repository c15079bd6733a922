// Architecture description and derived geometry, checked against real forward passes.
#include <bagnet/arch.h>
#include <bagnet/error.h>
#include <bagnet/model.h>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <array>

using namespace bagnet;

namespace {

Arch tiny(const std::string& overrides) {
  return parse_arch("blocks=1-1-1-1,kernel3=1-1-1-1,widths=4-4-8-8,stem=4,expansion=2,classes=3," + overrides);
}

BagNet random_net(const Arch& arch, uint64_t seed) {
  torch::manual_seed(seed);
  BagNet net(arch);
  torch::NoGradGuard no_grad;
  for (auto& buffer : net->named_buffers())
    if (buffer.key().find("running_var") != std::string::npos) buffer.value().uniform_(0.5, 1.5);
  net->eval();
  return net;
}

}  // namespace

TEST_CASE("presets have the published receptive fields and map sizes") {
  struct Expect {
    const char* name;
    int64_t q, map224, rows160, cols208;
  };
  for (const auto& e : {Expect{"bagnet9", 9, 27, 19, 25}, Expect{"bagnet17", 17, 26, 18, 24},
                        Expect{"bagnet33", 33, 24, 16, 22}}) {
    CAPTURE(e.name);
    const Arch arch = arch_preset(e.name);
    CHECK(receptive_field(arch) == e.q);
    CHECK(total_stride(arch) == 8);
    CHECK(feature_channels(arch) == 2048);
    const MapGeometry g = map_geometry(arch, 224, 224);
    CHECK(g.rows == e.map224);
    CHECK(g.cols == e.map224);
    const MapGeometry r = map_geometry(arch, 160, 208);
    CHECK(r.rows == e.rows160);
    CHECK(r.cols == e.cols208);
    CHECK(g.cell_box(2, 3) == Box{16, 24, e.q, e.q});
    CHECK(g.uncovered_bottom() == 224 - ((e.map224 - 1) * 8 + e.q));
  }
}

TEST_CASE("parameter count matches the built model") {
  for (const auto& name : arch_preset_names()) {
    BagNet net(arch_preset(name));
    int64_t count = 0;
    for (const auto& p : net->parameters()) count += p.numel();
    CHECK(parameter_count(arch_preset(name)) == count);
  }
  BagNet net(tiny("strides=2-1-2-1"));
  int64_t count = 0;
  for (const auto& p : net->parameters()) count += p.numel();
  CHECK(parameter_count(tiny("strides=2-1-2-1")) == count);
}

TEST_CASE("specs parse, round-trip and reject nonsense") {
  CHECK(parse_arch("bagnet17").name == "bagnet17");
  const Arch a = parse_arch("bagnet9:classes=10,in=1,strides=2-2-1-1");
  CHECK(a.num_classes == 10);
  CHECK(a.in_channels == 1);
  CHECK(a.strides == std::vector<int64_t>{2, 2, 1, 1});
  CHECK(a.kernel3 == std::vector<int64_t>{1, 1, 0, 0});
  CHECK(a.name == "custom");
  CHECK(total_stride(a) == 4);
  CHECK(parse_arch(arch_to_spec(a)) == a);
  CHECK(arch_to_spec(arch_preset("bagnet33")) == "bagnet33");
  CHECK_THROWS_AS(parse_arch("bagnet10"), Error);
  CHECK_THROWS_AS(parse_arch("bagnet9:classes=ten"), Error);
  CHECK_THROWS_AS(parse_arch("bagnet9:strides=2-2"), Error);
  CHECK_THROWS_AS(parse_arch("bagnet9:kernel3=5-0-0-0"), Error);
  CHECK_THROWS_AS(parse_arch("bagnet9:colour=red"), Error);
}

TEST_CASE("inputs smaller than the receptive field are refused clearly") {
  const Arch arch = arch_preset("bagnet33");
  CHECK_NOTHROW(map_geometry(arch, 33, 33));
  CHECK(map_geometry(arch, 33, 40).cols == 1);
  try {
    map_geometry(arch, 32, 64);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::BadInput);
    CHECK(std::string(e.what()).find("33") != std::string::npos);
  }
}

TEST_CASE("derived map size equals the real output size for custom strides and odd sizes") {
  for (const std::string strides : {"2-2-2-1", "2-1-2-1", "1-1-1-1", "3-2-1-1"}) {
    const Arch arch = tiny("strides=" + strides);
    BagNet net = random_net(arch, 1);
    const int64_t q = receptive_field(arch);
    for (int64_t h : {q, q + 1, q + 5, 2 * q + 3}) {
      for (int64_t w : {q, q + 7}) {
        CAPTURE(strides);
        CAPTURE(h);
        CAPTURE(w);
        torch::NoGradGuard no_grad;
        const auto logits = net->patch_logits(net->features(torch::randn({1, 3, h, w})));
        const MapGeometry g = map_geometry(arch, h, w);
        CHECK(logits.size(2) == g.rows);
        CHECK(logits.size(3) == g.cols);
      }
    }
  }
}

TEST_CASE("each cell depends on exactly the pixels of its box") {
  // Perturbing a pixel changes a cell's logit if and only if the pixel lies in the cell's box.
  const Arch arch = tiny("strides=2-2-2-1");  // q = 33, stride 8, like bagnet33
  REQUIRE(receptive_field(arch) == 33);
  BagNet net = random_net(arch, 7);
  torch::manual_seed(3);
  const auto input = torch::randn({1, 3, 57, 49});
  torch::NoGradGuard no_grad;
  const auto base = net->patch_logits(net->features(input));
  const MapGeometry g = map_geometry(arch, 57, 49);
  for (const auto& pixel : {std::pair<int64_t, int64_t>{0, 0}, {8, 8}, {32, 40}, {33, 16}, {56, 48}, {40, 0}}) {
    const int64_t y = pixel.first, x = pixel.second;  // plain variables: CAPTURE's lambda needs them (clang)
    auto perturbed = input.clone();
    perturbed[0][1][y][x] += 5.0;
    const auto diff = (net->patch_logits(net->features(perturbed)) - base).abs().amax(1)[0];
    for (int64_t i = 0; i < g.rows; ++i)
      for (int64_t j = 0; j < g.cols; ++j) {
        const Box b = g.cell_box(i, j);
        const bool inside = y >= b.top && y < b.bottom() && x >= b.left && x < b.right();
        CAPTURE(y);
        CAPTURE(x);
        CAPTURE(i);
        CAPTURE(j);
        CHECK((diff[i][j].item<float>() > 0) == inside);
      }
  }
}

TEST_CASE("on the CPU an image's logits do not depend on the other images of its batch") {
  // Batched dataset runs promise outputs byte-identical to runs of one image at a time: every
  // inference convolution takes one kernel whatever the batch size (model.cpp, convolve).
  torch::NoGradGuard no_grad;
  const int threads = torch::get_num_threads();
  for (const std::string in : {"in=1", "in=3"}) {
    BagNet net = random_net(tiny(in + ",strides=2-1-1-1"), 11);
    for (const int t : {1, 2}) {
      torch::set_num_threads(t);
      for (const auto size : {std::array<int64_t, 2>{28, 28}, std::array<int64_t, 2>{40, 33}}) {
        torch::manual_seed(3);
        const torch::Tensor batch = torch::randn({7, net->arch().in_channels, size[0], size[1]});
        const torch::Tensor all = net->patch_logits(net->features(batch));
        const torch::Tensor pooled = net->forward(batch);
        for (int64_t i = 0; i < batch.size(0); ++i) {
          CAPTURE(in);
          CAPTURE(t);
          CAPTURE(i);
          const torch::Tensor one = batch.slice(0, i, i + 1);
          CHECK(torch::equal(net->patch_logits(net->features(one))[0], all[i]));
          CHECK(torch::equal(net->forward(one)[0], pooled[i]));
          CHECK(torch::equal(net->patch_logits(net->features(batch.slice(0, i, std::min<int64_t>(i + 3, 7))))[0], all[i]));
        }
      }
    }
  }
  torch::set_num_threads(threads);
}
