// Speed of evidence maps, printed as figures measured in one run (not a test):
//   - a convolution throughput probe (the FLOP limit of this device),
//   - a bare forward pass and the native stride-8 map (all classes),
//   - the dense stride-1 map (the default shared method) for one class (median of --repeats runs)
//     and for all classes,
//   - the authors' patch-by-patch method, timed on a few map rows and extrapolated,
//   - where the device computes bfloat16 (CPUs with AVX512-BF16/AMX, CUDA): the forward pass and the
//     one-class dense map again in bfloat16, with the speed-up over float32 measured in the same run.
// Weights are random: speed does not depend on their values.
//   bench_evidence [--device cpu|cuda] [--threads N] [--repeats N] [--size N] [--models a,b] [--patch-rows N]
#include <bagnet/bagnet.h>

#include "bench_util.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace {

using bagnet::bench::median_seconds;

// Best GFLOP/s of convolutions shaped like BagNet's heaviest layers, channels-last.
double conv_probe(const torch::Device& device, int repeats, torch::ScalarType dtype = torch::kFloat) {
  struct Shape {
    int64_t cin, cout, k, side;
  };
  double best = 0;
  for (const Shape& s : {Shape{1024, 2048, 1, 48}, Shape{512, 2048, 1, 48}, Shape{256, 256, 3, 64}}) {
    const auto opts = torch::TensorOptions().device(device).dtype(dtype);
    const auto x = torch::randn({1, s.cin, s.side, s.side}, opts).contiguous(torch::MemoryFormat::ChannelsLast);
    const auto w = torch::randn({s.cout, s.cin, s.k, s.k}, opts).contiguous(torch::MemoryFormat::ChannelsLast);
    torch::conv2d(x, w);
    const double t = median_seconds(repeats, device, [&] { torch::conv2d(x, w); });
    const int64_t out = s.side - s.k + 1;
    best = std::max(best, 2.0 * double(out * out) * double(s.cin * s.cout * s.k * s.k) / t / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_spec = "cpu", models = "bagnet9,bagnet17,bagnet33";
  int threads = 0, repeats = 5;
  int64_t size = 224, patch_rows = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--device")) device_spec = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeats")) repeats = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--size")) size = std::max(33, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--models")) models = argv[i + 1];
    else if (!std::strcmp(argv[i], "--patch-rows")) patch_rows = std::max(1, std::atoi(argv[i + 1]));
  }
  try {
    bagnet::configure_runtime(threads);
    const torch::Device device = bagnet::resolve_device(device_spec);
    torch::NoGradGuard no_grad;
    const double peak = conv_probe(device, repeats);
    std::printf("device: %s, LibTorch %s, input %lldx%lld\n", bagnet::device_description(device).c_str(),
                bagnet::torch_version().c_str(), (long long)size, (long long)size);
    std::printf("convolution probe: %.1f GFLOP/s (best of BagNet-like 1x1 and 3x3 layers, channels-last)\n\n", peak);

    std::stringstream list(models);
    std::string name;
    while (std::getline(list, name, ',')) {
      torch::manual_seed(0);
      const bagnet::Arch arch = bagnet::arch_preset(name);
      bagnet::BagNet net(arch);
      net->eval();
      net->to(device);
      const auto input = torch::randn({1, 3, size, size}).to(device);
      const int64_t k = arch.num_classes;

      net->forward(input);  // warm-up
      const double forward = median_seconds(repeats, device, [&] { net->forward(input); });
      const double native = median_seconds(repeats, device, [&] { bagnet::compute_evidence(net, input); });
      const double native_gflop = bagnet::native_flops(arch, size, size, k) / 1e9;

      bagnet::DenseOptions one;
      one.classes = {281};
      if (device.is_cuda()) bagnet::compute_dense_evidence(net, input, one);  // kernel selection, allocator
      // The probe again right before the dense pass, so that the ratio compares figures taken under
      // the same load on a shared machine.
      // The limit is the better of the two probes: a probe slowed by a busy moment must not make the
      // dense pass look closer to the limit than it is.
      const double model_peak = std::max(peak, conv_probe(device, repeats));
      const double dense_one = median_seconds(repeats, device, [&] { bagnet::compute_dense_evidence(net, input, one); });
      const double dense_all = median_seconds(1, device, [&] { bagnet::compute_dense_evidence(net, input); });
      const double dense_gflop = bagnet::dense_flops(arch, size, size, 1, 1) / 1e9;
      const double dense_all_gflop = bagnet::dense_flops(arch, size, size, 1, k) / 1e9;

      bagnet::DenseOptions patchwise = one;
      patchwise.method = bagnet::DenseMethod::Patchwise;
      const auto strip = input.slice(2, 0, patch_rows);
      const double sample = median_seconds(1, device, [&] { bagnet::compute_dense_evidence(net, strip, patchwise); });
      const double patch_time = sample * double(size) / double(patch_rows);
      const double patch_gflop = bagnet::patchwise_flops(arch, size, size, 1, 1) / 1e9;

      std::printf("%s (q=%lld)\n", name.c_str(), (long long)bagnet::receptive_field(arch));
      std::printf("  convolution probe                 %8.1f GFLOP/s (best of the run's first and just before the dense pass)\n", model_peak);
      std::printf("  forward pass (image logits)       %8.3f s  %7.1f GFLOP  %6.1f GFLOP/s\n", forward, native_gflop,
                  native_gflop / forward);
      std::printf("  stride-8 map, all %lld classes     %8.3f s  ratio to forward %.3f\n", (long long)k, native,
                  native / forward);
      std::printf("  dense stride-1 map, 1 class       %8.3f s  %7.1f GFLOP  %6.1f GFLOP/s  %.2fx the FLOP limit\n",
                  dense_one, dense_gflop, dense_gflop / dense_one, dense_one / (dense_gflop / model_peak));
      std::printf("  dense stride-1 map, all classes   %8.3f s  %7.1f GFLOP  ratio to 1 class %.2f\n", dense_all,
                  dense_all_gflop, dense_all / dense_one);
      std::printf("  patchwise reference, 1 class      %8.1f s  %7.1f GFLOP  (extrapolated from %lld of %lld rows)\n",
                  patch_time, patch_gflop, (long long)patch_rows, (long long)size);
      std::printf("  dense speed-up over patchwise     %8.1fx\n", patch_time / dense_one);
      if (device.is_cuda() || bagnet::cpu_has_bfloat16()) {
        const double bf16_peak = conv_probe(device, repeats, torch::kBFloat16);
        net->set_precision(bagnet::Precision::BFloat16);
        net->forward(input);  // warm-up
        const double forward_bf16 = median_seconds(repeats, device, [&] { net->forward(input); });
        if (device.is_cuda()) bagnet::compute_dense_evidence(net, input, one);
        const double dense_bf16 = median_seconds(repeats, device, [&] { bagnet::compute_dense_evidence(net, input, one); });
        net->set_precision(bagnet::Precision::Float32);
        std::printf("  bfloat16 convolution probe        %8.1f GFLOP/s (%.2fx the float32 probe)\n", bf16_peak,
                    bf16_peak / model_peak);
        std::printf("  bfloat16 forward pass             %8.3f s  %.2fx faster than float32\n", forward_bf16,
                    forward / forward_bf16);
        std::printf("  bfloat16 dense map, 1 class       %8.3f s  %.2fx faster than float32  %6.1f GFLOP/s\n", dense_bf16,
                    dense_one / dense_bf16, dense_gflop / dense_bf16);
      }
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
