// Dense evidence maps: the a trous evaluation against the authors' patch-by-patch definition, tile
// independence, sampling strides, the relation to the native stride-8 map, and (with the fixtures)
// the official dense heatmaps.
#include <bagnet/error.h>
#include <bagnet/evidence.h>
#include <bagnet/model.h>
#include <bagnet/runtime.h>

#include "core/cpu_block_cache.h"
#include "core/folded_net.h"
#include "core/winograd.h"
#include "float_error.h"
#include "test_util.h"
#ifdef BAGNET_HAVE_FIXTURES
#include "reference.h"
#include <nlohmann/json.hpp>
#include <array>
#include <cmath>
#include <fstream>
#endif

#include <doctest/doctest.h>
#include <c10/core/Allocator.h>
#include <torch/torch.h>

using namespace bagnet;
using namespace bagnet::test;

namespace {

BagNet random_net(const std::string& spec, uint64_t seed) {
  torch::manual_seed(seed);
  BagNet net(parse_arch(spec));
  torch::NoGradGuard no_grad;
  for (auto& item : net->named_buffers()) {
    if (item.key().find("running_var") != std::string::npos) item.value().uniform_(0.5, 1.5);
    if (item.key().find("running_mean") != std::string::npos) item.value().uniform_(-0.2, 0.2);
  }
  for (auto& item : net->named_parameters())
    if (item.key().find("bn") != std::string::npos || item.key().find("downsample.1") != std::string::npos)
      item.value().uniform_(0.5, 1.5);
  net->eval();
  net->to(test_device());
  return net;
}

const char* const kTiny = "blocks=2-1-2-1,kernel3=1-1-1-1,widths=4-8-8-16,stem=8,expansion=2,classes=5";

}  // namespace

TEST_CASE("a trous dense maps equal the patch-by-patch definition") {
  configure_test_runtime();
  BagNet net = random_net(kTiny, 11);
  REQUIRE(receptive_field(net->arch()) == 33);
  torch::manual_seed(5);
  const auto input = torch::randn({2, 3, 19, 26});
  for (int64_t stride : {1, 2, 4, 8}) {
    CAPTURE(stride);
    DenseOptions o;
    o.stride = stride;
    o.method = DenseMethod::Patchwise;
    const DenseMap reference = compute_dense_evidence(net, input, o);
    o.method = DenseMethod::Shared;
    const DenseMap fast = compute_dense_evidence(net, input, o);
    CHECK(fast.logits.sizes() == torch::IntArrayRef{2, 5, (19 + stride - 1) / stride, (26 + stride - 1) / stride});
    // Both are float32 evaluations of the same patches: they differ by at most two rounding bounds.
    const Bounded exact = dense_logits_bounded(net, input, stride);
    const auto bound = 2 * exact.error;
    CHECK(bound_relative_size(bound, exact.value) <= 1e-3);
    CHECK(bound_ratio(exact.value, reference.logits, bound) <= 1);
    CHECK(bound_ratio(fast.logits, reference.logits, bound) <= 1);
    MESSAGE("stride ", stride, ": |shared - patchwise| is ", bound_ratio(fast.logits, reference.logits, bound),
            " of the bound, which is ", bound_relative_size(bound, exact.value), " of max |logit|");
    // The bound still catches a map that is off by one cell.
    CHECK(bound_ratio(fast.logits.roll(1, 3), reference.logits, bound) > 1);
    o.tile = 3;  // many small overlapping tiles give the same map
    const DenseMap tiled = compute_dense_evidence(net, input, o);
    CHECK(tiled.tiles > 1);
    CHECK(bound_ratio(tiled.logits, fast.logits, bound) <= 1);
  }
}

TEST_CASE("sampled maps are the dense map subsampled; the native map is the dense map at patch centres") {
  BagNet net = random_net(kTiny, 3);
  torch::manual_seed(9);
  const auto input = torch::randn({1, 3, 45, 50});
  DenseOptions o;
  o.classes = {4, 1};
  const DenseMap dense = compute_dense_evidence(net, input, o);
  const torch::Tensor bound = 2 * dense_logits_bounded(net, input, 1, o.classes).error;
  using torch::indexing::Slice;
  using torch::indexing::None;
  for (int64_t stride : {2, 4}) {
    o.stride = stride;
    const DenseMap sampled = compute_dense_evidence(net, input, o);
    const auto every = [&](const torch::Tensor& t) { return t.index({Slice(), Slice(), Slice(0, None, stride), Slice(0, None, stride)}); };
    CHECK(bound_ratio(sampled.logits, every(dense.logits), every(bound)) <= 1);
  }
  EvidenceOptions native_options;
  native_options.classes = {4, 1};
  const EvidenceMap native = compute_evidence(net, input, native_options);
  const int64_t half = 16;
  for (int64_t i = 0; i < native.geometry.rows; ++i)
    for (int64_t j = 0; j < native.geometry.cols; ++j) {
      const Box box = native.geometry.cell_box(i, j);
      CHECK(dense.patch_box(box.top + half, box.left + half) == box);
      CHECK(bound_ratio(native.logits[0].select(1, i).select(1, j),
                        dense.logits[0].select(1, box.top + half).select(1, box.left + half),
                        bound[0].select(1, box.top + half).select(1, box.left + half)) <= 1);
    }
}

TEST_CASE("bad dense options are refused") {
  BagNet net = random_net(kTiny, 1);
  DenseOptions o;
  o.stride = 3;
  CHECK_THROWS_AS(compute_dense_evidence(net, torch::zeros({1, 3, 10, 10}), o), Error);
  o.stride = 1;
  o.classes = {5};
  CHECK_THROWS_AS(compute_dense_evidence(net, torch::zeros({1, 3, 10, 10}), o), Error);
  CHECK_THROWS_AS(compute_dense_evidence(net, torch::zeros({1, 1, 10, 10}), DenseOptions{}), Error);
}

#ifdef BAGNET_HAVE_FIXTURES
TEST_CASE("official dense heatmaps are reproduced") {
  configure_test_runtime();
  std::ifstream manifest_file(official("manifest.json"));
  const auto manifest = nlohmann::json::parse(manifest_file);
  for (const auto& [model_name, model] : manifest["models"].items()) {
    const auto reference = read_reference(official(model["reference"].get<std::string>()));
    LoadOptions load_options;
    load_options.device = test_device();
    LoadedModel loaded = load_model(fixture(model_name + ".pth.tar"), load_options);
    for (const auto& [key, shape] : model["tensors"].items()) {
      if (key.rfind("dense_", 0) != 0) continue;
      // dense_<size>_img<i>_class<c>
      const auto img = key.find("_img"), cls = key.find("_class");
      const std::string size = key.substr(6, img - 6);
      const int64_t image = std::stoll(key.substr(img + 4, cls - img - 4));
      const int64_t klass = std::stoll(key.substr(cls + 6));
      const std::string map_key = key;  // CAPTURE cannot name a structured binding (clang)
      CAPTURE(map_key);
      DenseOptions o;
      o.classes = {klass};
      const DenseMap map = compute_dense_evidence(loaded.net, reference.at("input_" + size).slice(0, image, image + 1), o);
      const double error = relative_error(map.logits[0][0], reference.at(key));
      MESSAGE(model_name, " ", key, ": relative error ", error);
      CHECK(error <= 1e-4);
    }
  }
}
#endif

// Sanitized builds keep LibTorch's allocator (cpu_block_cache.cpp): there is no cache to test.
#ifndef BAGNET_SANITIZE
TEST_CASE("CPU block cache reuses freed blocks inside its scope only") {
  c10::Allocator* before = c10::GetAllocator(c10::DeviceType::CPU);
  torch::Tensor survivor;
  {
    bagnet::detail::CpuBlockCacheScope scope(64 << 20);
    CHECK(c10::GetAllocator(c10::DeviceType::CPU) != before);
    bagnet::detail::CpuBlockCacheScope nested(64 << 20);  // a second scope leaves the first in charge
    void* first = nullptr;
    {
      const auto a = torch::full({1 << 20}, 3.0f);  // 4 MB
      first = a.data_ptr();
    }
    const auto same = torch::zeros({1 << 20});
    CHECK(same.data_ptr() == first);
    CHECK(same.abs().max().item<float>() == 0);  // reused memory is still initialised by the op
    const auto smaller = torch::ones({3 << 18});  // 3 MB: served by a cached 4 MB block if one is free
    survivor = torch::arange(1 << 20, torch::kFloat);
    CHECK(smaller.sum().item<float>() == float(3 << 18));
  }
  CHECK(c10::GetAllocator(c10::DeviceType::CPU) == before);
  CHECK(survivor[12345].item<float>() == 12345.0f);
  survivor = torch::Tensor();  // freed after the scope: returned to the system, not cached
  const auto after = torch::ones({1 << 20});
  CHECK(after.sum().item<float>() == float(1 << 20));
}
#endif

TEST_CASE("Winograd 3x3 convolution equals the direct one") {
  configure_test_runtime();
  torch::manual_seed(11);
  const torch::Device device = test_device();
  for (const auto& [n, cin, cout, h, w] : std::vector<std::array<int64_t, 5>>{
           {1, 3, 5, 3, 3}, {2, 8, 4, 7, 10}, {3, 16, 16, 12, 9}, {1, 128, 128, 20, 20}}) {
    const int64_t in_channels = cin, height = h, width = w;  // CAPTURE cannot name a structured binding (clang)
    CAPTURE(in_channels);
    CAPTURE(height);
    CAPTURE(width);
    const auto x = torch::randn({n, cin, h, w}, device).contiguous(torch::MemoryFormat::ChannelsLast);
    const auto weight = torch::randn({cout, cin, 3, 3}, device) / std::sqrt(9.0 * double(cin));
    const auto bias = torch::randn({cout}, device);
    const auto direct = torch::conv2d(x, weight, bias);
    const auto fast = bagnet::detail::Winograd3x3(weight, bias)(x);
    REQUIRE(fast.sizes() == direct.sizes());
    // Each within its own rounding bound of the exact convolution (float_error.h).
    const auto direct_bound = gamma_n(9 * cin + 1) * torch::conv2d(x.abs(), weight.abs());
    const auto winograd_bound = gamma_n(cin + 13) * winograd_magnitude(x, weight);
    const auto bias_bound = (gamma_n(9 * cin + 1) + gamma_n(cin + 13)) * bias.abs().view({1, -1, 1, 1});
    CHECK(bound_relative_size(direct_bound + winograd_bound, direct) <= 1e-2);
    CHECK(bound_ratio(fast, direct, direct_bound + winograd_bound + bias_bound) <= 1);
    CHECK(bound_ratio(bagnet::detail::Winograd3x3(weight, {})(x), torch::conv2d(x, weight), direct_bound + winograd_bound) <= 1);
  }
  const auto wide = torch::zeros({256, 256, 3, 3});
  CHECK(bagnet::detail::winograd_pays_off(wide, 1, 1));
  CHECK_FALSE(bagnet::detail::winograd_pays_off(wide, 2, 1));
  CHECK_FALSE(bagnet::detail::winograd_pays_off(wide, 1, 2));
  CHECK_FALSE(bagnet::detail::winograd_pays_off(torch::zeros({64, 64, 3, 3}), 1, 1));
  CHECK_FALSE(bagnet::detail::winograd_pays_off(torch::zeros({256, 256, 1, 1}), 1, 1));
}

TEST_CASE("space-to-batch and a trous forms of the dense network agree") {
  configure_test_runtime();
  torch::manual_seed(3);
  // The phase round trip, including sizes that are not multiples of the split.
  const auto x = torch::randn({2, 3, 7, 10}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto phases = bagnet::detail::space_to_batch(x, 4);
  CHECK(phases.sizes() == torch::IntArrayRef{32, 3, 2, 3});
  CHECK(torch::equal(phases[1 * 2 + 0], x[0].slice(1, 0, 7, 4).slice(2, 1, 10, 4)));  // phase (0, 1)
  CHECK(torch::equal(bagnet::detail::batch_to_space(phases, 4).slice(2, 0, 7).slice(3, 0, 10), x));
  // Past the image edge: zeros (phase (3, 0) has one row of 2, phase (0, 2) two columns of 3).
  CHECK(phases[3 * 4 * 2].select(1, 1).abs().max().item<float>() == 0);
  CHECK(phases[2 * 2].select(2, 2).abs().max().item<float>() == 0);
  CHECK(phases.is_contiguous(torch::MemoryFormat::ChannelsLast));

  for (const char* spec : {kTiny, "blocks=1-1-1-2,kernel3=1-1-1-1,widths=4-4-8-8,stem=4,expansion=2,strides=2-1-2-2,classes=3"}) {
    CAPTURE(spec);
    BagNet net = random_net(spec, 21);
    for (int64_t side : {35, 41, 50}) {
      CAPTURE(side);
      const auto input = torch::randn({1, 3, side, side + 3}).to(test_device());
      for (int64_t stride : bagnet::detail::dense_strides(net->arch())) {
        CAPTURE(stride);
        const bagnet::detail::FoldedNet s2b(*net, stride), atrous(*net, stride, bagnet::detail::DenseForm::Atrous);
        const auto a = s2b.logits(input, {}), b = atrous.logits(input, {});
        CHECK(a.sizes() == b.sizes());
        CHECK(bound_ratio(a, b, 2 * dense_logits_bounded(net, input, stride, {}, false).error) <= 1);
      }
    }
  }
}
