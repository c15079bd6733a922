// Prints, for BagNet-9/17/33 at 224x224 on the chosen device, the time of a bare forward pass
// (image logits) and of the stride-8 evidence map (all classes and one class), as ratios measured
// in one run. Weights are random: speed does not depend on their values.
//   bench_evidence [--device cpu|cuda] [--threads N] [--repeats N]
#include <bagnet/bagnet.h>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

template <typename F>
double median_seconds(int repeats, const torch::Device& device, F&& f) {
  std::vector<double> times;
  f();  // warm-up
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

}  // namespace

int main(int argc, char** argv) {
  std::string device_spec = "cpu";
  int threads = 0, repeats = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--device")) device_spec = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeats")) repeats = std::max(1, std::atoi(argv[i + 1]));
  }
  try {
    bagnet::configure_runtime(threads);
    const torch::Device device = bagnet::resolve_device(device_spec);
    std::printf("device: %s, LibTorch %s, median of %d runs\n", bagnet::device_description(device).c_str(),
                bagnet::torch_version().c_str(), repeats);
    std::printf("%-9s %12s %14s %14s %10s %10s\n", "model", "forward [s]", "map 1000 [s]", "map 1 cls [s]",
                "ratio all", "ratio one");
    torch::NoGradGuard no_grad;
    for (const auto& name : bagnet::arch_preset_names()) {
      torch::manual_seed(0);
      bagnet::BagNet net(bagnet::arch_preset(name));
      net->eval();
      net->to(device);
      const auto input = torch::randn({1, 3, 224, 224}).to(device);
      const double forward = median_seconds(repeats, device, [&] { net->forward(input); });
      const double all = median_seconds(repeats, device, [&] { bagnet::compute_evidence(net, input); });
      bagnet::EvidenceOptions one;
      one.classes = {281};
      const double single = median_seconds(repeats, device, [&] { bagnet::compute_evidence(net, input, one); });
      std::printf("%-9s %12.4f %14.4f %14.4f %10.3f %10.3f\n", name.c_str(), forward, all, single, all / forward,
                  single / forward);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
