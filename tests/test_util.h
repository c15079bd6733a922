#pragma once
// Helpers shared by the tests: tolerances and paths.
#include <bagnet/runtime.h>

#include <torch/torch.h>

#include <cstdlib>
#include <string>

namespace bagnet::test {

// The fixtures' tolerance: max |ours - reference| <= 1e-4 * max |reference|.
inline double relative_error(const torch::Tensor& ours, const torch::Tensor& reference) {
  const torch::Tensor a = ours.to(torch::kCPU, torch::kDouble), b = reference.to(torch::kCPU, torch::kDouble);
  const double scale = b.abs().max().item<double>();
  return (a - b).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

// The device the model tests run on: BAGNET_TEST_DEVICE (cpu, cuda, auto), cpu when unset, so the
// same official comparisons can be run on a GPU machine.
inline torch::Device test_device() {
  const char* spec = std::getenv("BAGNET_TEST_DEVICE");
  return resolve_device(spec && *spec ? spec : "cpu");
}

// Threads for the tests: BAGNET_TEST_THREADS when set (tolerances must hold for 1 or 2 threads;
// scripts/test-kernels.sh runs the suite both ways), else `fallback` (0: all cores).
inline int test_threads(int fallback = 0) {
  const char* spec = std::getenv("BAGNET_TEST_THREADS");
  return spec && *spec ? std::atoi(spec) : fallback;
}

inline void configure_test_runtime() { configure_runtime(test_threads()); }

inline std::string official(const std::string& name) { return std::string(BAGNET_OFFICIAL_DIR) + "/" + name; }
inline std::string fixture(const std::string& name) { return std::string(BAGNET_FIXTURE_DIR) + "/" + name; }

}  // namespace bagnet::test
