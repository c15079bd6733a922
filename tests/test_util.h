#pragma once
// Helpers shared by the tests: tolerances and paths.
#include <torch/torch.h>

#include <string>

namespace bagnet::test {

// The fixtures' tolerance: max |ours - reference| <= 1e-4 * max |reference|.
inline double relative_error(const torch::Tensor& ours, const torch::Tensor& reference) {
  const double scale = reference.abs().max().item<double>();
  return (ours.to(torch::kDouble) - reference.to(torch::kDouble)).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

inline std::string official(const std::string& name) { return std::string(BAGNET_OFFICIAL_DIR) + "/" + name; }
inline std::string fixture(const std::string& name) { return std::string(BAGNET_FIXTURE_DIR) + "/" + name; }

}  // namespace bagnet::test
