#pragma once
// Timing shared by the benchmarks.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace bagnet::bench {

// Median wall time of `repeats` calls of f, with the device synchronised around each call.
template <typename F>
double median_seconds(int repeats, const torch::Device& device, F&& f) {
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    if (device.is_cuda()) torch::cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    f();
    if (device.is_cuda()) torch::cuda::synchronize();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace bagnet::bench
