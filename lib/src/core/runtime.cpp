#include <bagnet/error.h>
#include <bagnet/runtime.h>

#include "bagnet_version.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <thread>

namespace bagnet {

void configure_runtime(int threads) {
  BAGNET_CHECK(threads >= 0, ErrorKind::InvalidArgument, "threads must be >= 0 (0 = all cores), got ", threads);
  const unsigned hardware = std::thread::hardware_concurrency();
  at::set_num_threads(threads > 0 ? threads : static_cast<int>(hardware > 0 ? hardware : 1));
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
}

torch::Device resolve_device(const std::string& spec) {
  if (spec == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (spec == "cpu") return torch::kCPU;
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    int64_t index = 0;
    if (spec.size() > 5) {
      try {
        size_t used = 0;
        index = std::stoll(spec.substr(5), &used);
        BAGNET_CHECK(used == spec.size() - 5 && index >= 0, ErrorKind::InvalidArgument, "");
      } catch (const std::exception&) {
        fail(ErrorKind::InvalidArgument, "device '", spec, "': expected cuda:N with N a GPU index");
      }
    }
    BAGNET_CHECK(torch::cuda::is_available(), ErrorKind::Runtime, "device '", spec,
                 "' requested, but this LibTorch build has no usable CUDA device (choose the device spec cpu or auto)");
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    BAGNET_CHECK(index < count, ErrorKind::Runtime, "device '", spec, "': only ", count, " CUDA device(s) present");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  fail(ErrorKind::InvalidArgument, "unknown device '", spec, "' (expected auto, cpu, cuda or cuda:N)");
}

std::string bagnet_version() { return "bagnet-lens " BAGNET_VERSION; }

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

std::string device_description(const torch::Device& device) {
  if (device.is_cuda()) return device.str();
  return "cpu (" + std::to_string(at::get_num_threads()) + " threads)";
}

}  // namespace bagnet
