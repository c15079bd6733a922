#pragma once
// Process-wide LibTorch settings: thread count, exact fp32 (TF32 off), device selection.
#include <torch/types.h>

#include <string>

namespace bagnet {

// Sets LibTorch's intra-op thread count (0: one per hardware thread) and turns TF32 off so CUDA
// matmuls and convolutions stay exact fp32. Call once before computing.
void configure_runtime(int threads = 0);

// "auto" (CUDA when this LibTorch build has a usable GPU, else CPU), "cpu", "cuda", "cuda:N".
// Throws Error(InvalidArgument) for unknown specs and Error(Runtime) for unavailable devices.
torch::Device resolve_device(const std::string& spec);

// "bagnet-lens X.Y.Z", the version of this library (from CMake's project()).
std::string bagnet_version();
std::string torch_version();       // e.g. "1.13.1"
std::string device_description(const torch::Device& device);  // e.g. "cpu (2 threads)"

}  // namespace bagnet
