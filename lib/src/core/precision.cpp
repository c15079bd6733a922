#include <bagnet/error.h>
#include <bagnet/model.h>

#include <ATen/Context.h>
#include <ATen/ops/mkldnn_convolution.h>
#include <torch/torch.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace bagnet {

std::string precision_name(Precision precision) {
  return precision == Precision::BFloat16 ? "bfloat16" : "float32";
}

Precision parse_precision(const std::string& name) {
  if (name == "float32" || name == "fp32") return Precision::Float32;
  if (name == "bfloat16" || name == "bf16") return Precision::BFloat16;
  fail(ErrorKind::InvalidArgument, "precision '", name, "': expected float32 (fp32) or bfloat16 (bf16)");
}

namespace {

// Whether oneDNN, as configured (DNNL_MAX_CPU_ISA may hold it below the CPU), creates a bfloat16
// convolution at all: with its ISA limited to AVX2 it has none and throws.
bool one_dnn_runs_bfloat16() {
  static const bool runs = [] {
    try {
      torch::NoGradGuard no_grad;
      const auto options = torch::TensorOptions().dtype(torch::kBFloat16);
      const torch::Tensor x = torch::ones({1, 16, 4, 4}, options).contiguous(torch::MemoryFormat::ChannelsLast);
      const torch::Tensor w = torch::ones({16, 16, 1, 1}, options).contiguous(torch::MemoryFormat::ChannelsLast);
      const int64_t zeros[2] = {0, 0}, ones[2] = {1, 1};
      at::mkldnn_convolution(x, w, c10::nullopt, zeros, ones, ones, 1);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return runs;
}

bool cpu_has_bfloat16_instructions() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid(1, a, b, c, d);
  if (!(c & (1u << 27))) return false;  // OSXSAVE: XGETBV tells which register states the OS saves
  unsigned xcr0_low = 0, xcr0_high = 0;
  __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  const bool avx512_state = (xcr0_low & 0xE6u) == 0xE6u;  // SSE, AVX, opmask and both ZMM halves
  const bool amx_state = (xcr0_low & (3u << 17)) == (3u << 17);  // XTILECFG, XTILEDATA
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx512_bw_vl_dq = (b & (1u << 30)) && (b & (1u << 31)) && (b & (1u << 17));  // oneDNN's base
  const bool amx_bf16 = d & (1u << 22);
  __cpuid_count(7, 1, a, b, c, d);
  const bool avx512_bf16 = a & (1u << 5);
  return avx512_state && avx512_bw_vl_dq && (avx512_bf16 || (amx_bf16 && amx_state));
#else
  return false;
#endif
}

}  // namespace

bool cpu_has_bfloat16() { return at::hasMKLDNN() && cpu_has_bfloat16_instructions() && one_dnn_runs_bfloat16(); }

void check_precision_supported(Precision precision, const torch::Device& device) {
  if (precision == Precision::Float32 || !device.is_cpu()) return;
  BAGNET_CHECK(cpu_has_bfloat16(), ErrorKind::Runtime,
               "bfloat16 needs a CPU with AVX512-BF16 or AMX (or a CUDA device); this CPU has neither, or oneDNN is "
               "held below them (DNNL_MAX_CPU_ISA), so it would run far slower than float32 or not at all: use float32");
}

}  // namespace bagnet
