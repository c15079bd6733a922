// Where the time of a dense map goes: each stage of the folded dense network (space-to-batch form)
// timed on its own, with its FLOPs and GFLOP/s, next to the time of its convolutions alone (so the
// cost of everything else, ReLU, residual adds, crops and phase reshuffles, is visible); the whole network in its two equivalent forms
// (space-to-batch and dilated "a trous" kernels); and one 3x3 layer per stage in both forms.
// Figures for choosing the algorithm, not a test. Random weights.
//   bench_layers [--model bagnet33] [--size 224] [--threads N] [--repeats N] [--device cpu|cuda]
#include <bagnet/bagnet.h>

#include "core/cpu_block_cache.h"
#include "core/folded_net.h"

#include "bench_util.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

using bagnet::bench::median_seconds;

double conv_flops(const torch::Tensor& out, const torch::Tensor& weight) {
  return 2.0 * double(out.numel()) * double(weight.size(1) * weight.size(2) * weight.size(3));
}

double block_flops(const bagnet::detail::FoldedBlock& b, const torch::Tensor& x) {
  const torch::Tensor o1 = b.conv1(x), o2 = b.conv2(o1), o3 = b.conv3(o2);
  double f = conv_flops(o1, b.conv1.weight) + conv_flops(o2, b.conv2.weight) + conv_flops(o3, b.conv3.weight);
  // A pointwise downsample only computes the positions the block keeps (see FoldedBlock).
  if (b.has_downsample)
    f += b.downsample.stride == 1 ? 2.0 * double(o3.numel()) * double(b.downsample.weight.size(1))
                                  : conv_flops(b.downsample(x), b.downsample.weight);
  return f;
}

// The block's convolutions, each timed alone on the input it gets inside the block.
double block_conv_seconds(const bagnet::detail::FoldedBlock& b, const torch::Tensor& x, int repeats,
                          const torch::Device& device) {
  const torch::Tensor o1 = b.conv1(x).relu_(), o2 = b.conv2(o1).relu_();
  double s = median_seconds(repeats, device, [&] { b.conv1(x); }) +
             median_seconds(repeats, device, [&] { b.conv2(o1); }) +
             median_seconds(repeats, device, [&] { b.conv3(o2); });
  if (b.has_downsample) {
    const torch::Tensor in = b.downsample.stride == 1
                                 ? x.slice(2, 0, o2.size(2)).slice(3, 0, o2.size(3)).contiguous(torch::MemoryFormat::ChannelsLast)
                                 : x;
    s += median_seconds(repeats, device, [&] { b.downsample(in); });
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "bagnet33", device_spec = "cpu";
  int threads = 0, repeats = 3;
  int64_t size = 224;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--device")) device_spec = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--size")) size = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "error: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  try {
    bagnet::configure_runtime(threads);
    const torch::Device device = bagnet::resolve_device(device_spec);
    torch::NoGradGuard no_grad;
    // Freed blocks reused as in compute_dense_evidence (what a 224x224 BagNet-33 pass gets there).
    std::optional<bagnet::detail::CpuBlockCacheScope> block_cache;
    if (device.is_cpu()) block_cache.emplace(std::size_t(512) << 20);
    torch::manual_seed(0);
    bagnet::BagNet net(bagnet::parse_arch(model));
    net->eval();
    net->to(device);
    const bagnet::detail::FoldedNet folded(*net, 1);
    const bagnet::detail::FoldedNet atrous(*net, 1, bagnet::detail::DenseForm::Atrous);
    const int64_t q = bagnet::receptive_field(net->arch());
    const auto input = torch::randn({1, net->arch().in_channels, size + q - 1, size + q - 1}, device)
                           .contiguous(torch::MemoryFormat::ChannelsLast);
    std::printf("%s dense stride-1 map of %lldx%lld on %s, LibTorch %s\n", model.c_str(), (long long)size,
                (long long)size, bagnet::device_description(device).c_str(), bagnet::torch_version().c_str());
    std::printf("%-14s %10s %10s %10s %10s %24s\n", "stage", "seconds", "convs s", "GFLOP", "GFLOP/s", "output [N, C, H, W]");
    double total_s = 0, total_conv = 0, total_f = 0;
    auto row = [&](const std::string& name, double s, double conv_s, double f, const torch::Tensor& out) {
      total_s += s;
      total_conv += conv_s;
      total_f += f;
      std::printf("%-14s %10.3f %10.3f %10.1f %10.1f   [%lld, %lld, %lld, %lld]\n", name.c_str(), s, conv_s, f / 1e9,
                  f / s / 1e9, (long long)out.size(0), (long long)out.size(1), (long long)out.size(2),
                  (long long)out.size(3));
    };
    torch::Tensor x = folded.stem(input);
    const double stem_s = median_seconds(repeats, device, [&] { folded.stem(input); });
    row("stem", stem_s, stem_s, 0, x);
    const auto& blocks = folded.blocks();
    for (size_t b = 0; b < blocks.size(); ++b) {
      const double f = block_flops(blocks[b], x);
      const double s = median_seconds(repeats, device, [&] { blocks[b](x); });
      const double conv_s = block_conv_seconds(blocks[b], x, repeats, device);
      x = blocks[b](x);
      row("block " + std::to_string(b), s, conv_s, f, x);
      if (blocks[b].split_after > 1) {
        const int64_t split = blocks[b].split_after;
        const double t = median_seconds(repeats, device, [&] { bagnet::detail::space_to_batch(x, split); });
        x = bagnet::detail::space_to_batch(x, split);
        row("  to phases", t, 0, 0, x);
      }
    }
    const std::vector<int64_t> one{0};
    const torch::Tensor logits = folded.classify(x, one);
    const double classify_s = median_seconds(repeats, device, [&] { folded.classify(x, one); });
    row("classifier", classify_s, classify_s, 2.0 * double(x.numel()), logits);
    std::printf("%-14s %10.3f %10.3f %10.1f %10.1f\n", "total", total_s, total_conv, total_f / 1e9, total_f / total_s / 1e9);
    std::printf("convolutions alone: %.3f s, %.1f GFLOP/s; everything else (ReLU, residual adds, crops, phases): "
                "%.3f s, %.0f%%\n\n",
                total_conv, total_f / total_conv / 1e9, total_s - total_conv, 100.0 * (total_s - total_conv) / total_s);

    const double s2b_s = median_seconds(repeats, device, [&] { folded.logits(input, one); });
    const double atrous_s = median_seconds(repeats, device, [&] { atrous.logits(input, one); });
    std::printf("whole network, 1 class: space-to-batch %.3f s, a trous %.3f s, ratio %.2f\n\n", s2b_s, atrous_s,
                atrous_s / s2b_s);

    // A 3x3 layer of each stage at its dilation: dilated kernel against space-to-batch.
    std::printf("3x3 layer forms   %10s %10s %10s\n", "dilated s", "s2b s", "ratio");
    for (const auto& [planes, d] : std::vector<std::pair<int64_t, int64_t>>{{128, 2}, {256, 4}, {512, 8}}) {
      const int64_t side = (size + q - 1) / d * d;
      const auto a = torch::randn({1, planes, side, side}, device).contiguous(torch::MemoryFormat::ChannelsLast);
      const auto w = torch::randn({planes, planes, 3, 3}, device).contiguous(torch::MemoryFormat::ChannelsLast);
      const std::vector<int64_t> one1{1, 1}, zero{0, 0}, dil{d, d};
      const double dilated = median_seconds(repeats, device, [&] { torch::conv2d(a, w, {}, one1, zero, dil); });
      const torch::Tensor phases = bagnet::detail::space_to_batch(a, d);
      const double s2b = median_seconds(repeats, device, [&] { torch::conv2d(phases, w); });
      std::printf("  %4lld planes, d=%lld %10.3f %10.3f %10.2f\n", (long long)planes, (long long)d, dilated, s2b,
                  dilated / s2b);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 4;
  }
  return 0;
}
