// The C++ BagNets against the official PyTorch outputs (fixtures/official): image logits and
// stride-8 logit maps of all three models on all fixture images, within the fixtures' tolerance
// max |ours - official| <= 1e-4 * max |official|, and the same top-5 order.
#include <bagnet/evidence.h>
#include <bagnet/model.h>
#include <bagnet/runtime.h>
#ifdef BAGNET_HAVE_VISION
#include <bagnet/image.h>
#endif

#include "float_error.h"
#include "reference.h"
#include "test_util.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace bagnet;
using namespace bagnet::test;

namespace {

constexpr double kTolerance = 1e-4;

std::vector<int64_t> top5(const torch::Tensor& logits) {
  const auto index = std::get<1>(logits.topk(5));
  return std::vector<int64_t>(index.data_ptr<int64_t>(), index.data_ptr<int64_t>() + 5);
}

}  // namespace

TEST_CASE("official outputs are reproduced") {
  configure_test_runtime();
  std::ifstream manifest_file(official("manifest.json"));
  const auto manifest = nlohmann::json::parse(manifest_file);
  for (const auto& [model_name, model] : manifest["models"].items()) {
    const std::string model_key = model_name;  // CAPTURE cannot name a structured binding (clang)
    CAPTURE(model_key);
    LoadOptions load_options;
    load_options.device = test_device();
    const LoadedModel loaded = load_model(fixture(model_name + ".pth.tar"), load_options);
    BagNet net = loaded.net;
    const auto reference = read_reference(official(model["reference"].get<std::string>()));
    for (const auto& [size, names] : manifest["images"].items()) {
      const std::string size_key = size;
      CAPTURE(size_key);
      const torch::Tensor input = reference.at("input_" + size);
      const torch::Tensor official_logits = reference.at("logits_" + size);
      const torch::Tensor official_map = reference.at("logit_map_" + size);  // [N, H', W', K]
      const EvidenceMap map = compute_evidence(net, input);
      CHECK(map.logits.sizes() == official_map.permute({0, 3, 1, 2}).sizes());
      CHECK(map.geometry.rows == official_map.size(1));
      CHECK(map.geometry.cols == official_map.size(2));
      const double map_error = relative_error(map.logits, official_map.permute({0, 3, 1, 2}));
      const torch::Tensor logits = map.image_logits();
      const double logit_error = relative_error(logits, official_logits);
      MESSAGE(model_name, " ", size, ": relative error map ", map_error, ", logits ", logit_error);
      CHECK(map_error <= kTolerance);
      CHECK(logit_error <= kTolerance);
      CHECK(relative_error(net->forward(input.to(load_options.device)), official_logits) <= kTolerance);
      for (int64_t n = 0; n < input.size(0); ++n) {
        CAPTURE(n);
        CHECK(top5(logits[n]) == top5(official_logits[n]));
      }
      // A class subset computes exactly those channels. Only the classifier's summation order may
      // differ (another kernel for 3 output channels than for 1000), so the two agree within the
      // rounding bound of that one layer (float_error.h).
      EvidenceOptions subset;
      subset.classes = {999, 3, 281};
      const EvidenceMap part = compute_evidence(net, input, subset);
      CHECK(part.logits.size(1) == 3);
      const auto index = torch::tensor(subset.classes);
      const torch::Tensor bound = linear_difference_bound(
          net->features(input.to(load_options.device)), net->named_parameters()["fc.weight"].index_select(0, index.to(load_options.device)),
          net->named_parameters()["fc.bias"].index_select(0, index.to(load_options.device)));
      CHECK(bound_relative_size(bound, part.logits) <= 0.05);  // a wrong row or offset moves logits by ~100%
      CHECK(bound_ratio(part.logits, map.logits.index_select(1, index), bound) <= 1);
#ifdef BAGNET_HAVE_VISION
      // The PNG files decode to exactly the stored model inputs.
      for (size_t n = 0; n < names.size(); ++n) {
        InputSpec p;
        p.resize = std::nullopt;
        p.crop = std::nullopt;
        const ModelInput in = load_image(official("images/" + names[n].get<std::string>() + "-" + size + ".png"), p);
        // (v / 255 - mean) / std takes 3 roundings here and in PyTorch, each relative to at most
        // (1 + mean) / std in magnitude: |ours - stored| <= 2 gamma_n(3) (1 + mean) / std.
        const double bound = 2 * gamma_n(3) * (1 + 0.485) / 0.225;
        CHECK((in.tensor - input[static_cast<int64_t>(n)]).abs().max().item<float>() <= bound);
      }
#endif
    }
  }
}
