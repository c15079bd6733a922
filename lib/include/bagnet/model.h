#pragma once
// The BagNet network (Brendel & Bethge, ICLR 2019) built from an Arch, with parameter names equal
// to the official PyTorch code's, so official state dicts load one-to-one.
//
//   bagnet::LoadedModel m = bagnet::load_model("bagnet32-2ddd53ed.pth.tar");
//   torch::Tensor logits = m.net->forward(input);   // [N, 3, H, W] -> [N, 1000]
#include <bagnet/arch.h>
#include <bagnet/checkpoint.h>
#include <bagnet/model_file.h>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>
#include <vector>

namespace bagnet {

namespace detail {
class FoldedNet;
}

// The number format of inference. BFloat16 keeps float32's range with an 8-bit mantissa: activations
// and convolution weights are rounded to it (products accumulate in float32), the classifier and
// everything after it stay float32. Roughly twice the convolution rate on CPUs with AVX512-BF16 or
// AMX and on CUDA GPUs; the cost in exactness is measured in README.md ("Precision").
enum class Precision {
  Float32,   // exact to the official code's float32 results (the default)
  BFloat16,  // inference only
};
std::string precision_name(Precision precision);  // "float32", "bfloat16"
// "float32"/"fp32" or "bfloat16"/"bf16"; throws Error(InvalidArgument) naming the choices.
Precision parse_precision(const std::string& name);
// Whether this CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX-BF16) that the
// operating system enables and oneDNN may use (DNNL_MAX_CPU_ISA can hold it below them); without
// them oneDNN has no fast (or, on older CPUs, no) bfloat16 path.
bool cpu_has_bfloat16();
// Throws Error(Runtime) when `device` cannot run `precision` (bfloat16 on a CPU without the
// instructions above); float32 runs everywhere.
void check_precision_supported(Precision precision, const torch::Device& device);

class BagNetImpl : public torch::nn::Module {
 public:
  explicit BagNetImpl(const Arch& arch);

  // [N, in_channels, H, W] float32 -> [N, feature_channels, H', W'] float32 (before the classifier).
  torch::Tensor features(const torch::Tensor& input);
  // [N, feature_channels, H', W'] -> [N, K, H', W'] per-patch logits of `classes` (empty: all, in
  // index order). Only the requested rows of the classifier are evaluated.
  torch::Tensor patch_logits(const torch::Tensor& features, const std::vector<int64_t>& classes = {});
  // [N, in_channels, H, W] -> [N, num_classes] image logits: the mean of the patch logits over all
  // positions (the bag-of-features decision, correct for non-square inputs).
  torch::Tensor forward(const torch::Tensor& input);

  const Arch& arch() const { return arch_; }

  // BFloat16: features() runs through a copy of the current weights with every BatchNorm folded into
  // its convolution, in bfloat16, on the parameters' device (call after to(device), and again after
  // changing the weights). Inference only: features() throws in training mode and computes without
  // autograd. Float32 drops the copy. Throws Error(Runtime) where the device has no bfloat16 path.
  void set_precision(Precision precision);
  Precision precision() const { return precision_; }

 private:
  Arch arch_;
  Precision precision_ = Precision::Float32;
  std::shared_ptr<const detail::FoldedNet> reduced_;  // the bfloat16 copy
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> stages_;
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(BagNet);

// The parameters and buffers of `net` by name, in registration order (what a model file stores).
StateDict state_dict_of(const BagNet& net);

// Copies `tensors` into `net` strictly: every parameter and buffer must be present with the same
// shape (num_batches_tracked may be absent), and nothing else may be. Throws Error(BadInput) naming
// the key and both shapes.
void load_state_dict(BagNet& net, const StateDict& tensors);

struct LoadOptions {
  std::string arch;                         // architecture spec overriding detection ("" = detect)
  torch::Device device = torch::kCPU;
  Precision precision = Precision::Float32; // BagNetImpl::set_precision after loading
};

struct LoadedModel {
  BagNet net{nullptr};                      // in eval mode, on the requested device
  Arch arch;
  Checkpoint checkpoint;                    // file facts; `tensors` is emptied after loading
  std::string path;
  // Set for bagnet-lens model files (model_file.h): class names, input preprocessing, provenance.
  std::optional<ModelMeta> meta;
};

// Reads a checkpoint, detects (or takes) the architecture, builds the model and loads it strictly.
// For bagnet-lens model files the architecture (strides included) comes from the file's metadata.
LoadedModel load_model(const std::string& path, const LoadOptions& options = {});

// How images become this model's input: the model file's spec when it has one, else the defaults
// for its channel count (default_input_spec). Throws Error(InvalidArgument) for a model that images
// cannot feed (neither 1 nor 3 input channels).
InputSpec input_spec_of(const LoadedModel& model);

}  // namespace bagnet
