#include <bagnet/error.h>
#include <bagnet/model.h>

#include "classifier_rows.h"
#include "convolve.h"
#include "folded_net.h"
#include "shape_string.h"

#include <torch/torch.h>

#include <unordered_map>

namespace bagnet {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(0).bias(false));
}

torch::Tensor convolve(const nn::Conv2dImpl& c, const torch::Tensor& x) {
  return detail::convolve(x, c.weight, c.bias, c.options.stride()->at(0));
}

// ResNet bottleneck without padding; the residual is cropped at the bottom/right to match, as the
// official code does (residual[:, :, :-d, :-d]).
class BottleneckImpl : public nn::Module {
 public:
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t expansion, int64_t kernel, int64_t stride)
      : conv1(register_module("conv1", conv(inplanes, planes, 1, 1))),
        bn1(register_module("bn1", nn::BatchNorm2d(planes))),
        conv2(register_module("conv2", conv(planes, planes, kernel, stride))),
        bn2(register_module("bn2", nn::BatchNorm2d(planes))),
        conv3(register_module("conv3", conv(planes, planes * expansion, 1, 1))),
        bn3(register_module("bn3", nn::BatchNorm2d(planes * expansion))) {
    if (stride != 1 || inplanes != planes * expansion) {
      downsample = register_module(
          "downsample", nn::Sequential(conv(inplanes, planes * expansion, 1, stride),
                                       nn::BatchNorm2d(planes * expansion)));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = torch::relu(bn1(convolve(*conv1, x)));
    out = torch::relu(bn2(convolve(*conv2, out)));
    out = bn3(convolve(*conv3, out));
    torch::Tensor residual = x;
    if (downsample) residual = downsample[1]->as<nn::BatchNorm2d>()->forward(convolve(*downsample[0]->as<nn::Conv2d>(), x));
    const int64_t dh = residual.size(2) - out.size(2), dw = residual.size(3) - out.size(3);
    if (dh > 0 || dw > 0)
      residual = residual.slice(2, 0, residual.size(2) - dh).slice(3, 0, residual.size(3) - dw);
    return torch::relu(out + residual);
  }

  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Conv2d conv3;
  nn::BatchNorm2d bn3;
  nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

using detail::shape_string;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

BagNetImpl::BagNetImpl(const Arch& arch) : arch_(arch) {
  validate_arch(arch_);
  conv1 = register_module("conv1", conv(arch.in_channels, arch.stem_width, 1, 1));
  conv2 = register_module("conv2", conv(arch.stem_width, arch.stem_width, 3, 1));
  bn1 = register_module("bn1", nn::BatchNorm2d(arch.stem_width));
  int64_t inplanes = arch.stem_width;
  for (size_t s = 0; s < arch.blocks.size(); ++s) {
    nn::Sequential stage;
    for (int64_t b = 0; b < arch.blocks[s]; ++b) {
      stage->push_back(Bottleneck(inplanes, arch.widths[s], arch.expansion, block_kernel(arch, s, b), block_stride(arch, s, b)));
      inplanes = arch.widths[s] * arch.expansion;
    }
    stages_.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  fc = register_module("fc", nn::Linear(inplanes, arch.num_classes));
}

torch::Tensor BagNetImpl::features(const torch::Tensor& input) {
  BAGNET_CHECK(input.dim() == 4 && input.size(1) == arch_.in_channels, ErrorKind::BadInput,
               "model input: expected [N, ", arch_.in_channels, ", H, W], got ", shape_string(input.sizes()));
  BAGNET_CHECK(input.scalar_type() == torch::kFloat, ErrorKind::BadInput, "model input: expected float32, got ",
               input.scalar_type());
  map_geometry(arch_, input.size(2), input.size(3));  // throws for inputs smaller than q
  if (reduced_) {
    BAGNET_CHECK(!is_training(), ErrorKind::InvalidArgument,
                 "bfloat16 precision is for inference: call eval() first, or set float32 precision to train");
    torch::NoGradGuard no_grad;
    return reduced_->features(input).to(torch::kFloat);
  }
  torch::Tensor x = torch::relu(bn1(convolve(*conv2, convolve(*conv1, input))));
  for (auto& stage : stages_) x = stage->forward(x);
  return x;
}

torch::Tensor BagNetImpl::patch_logits(const torch::Tensor& features, const std::vector<int64_t>& classes) {
  const auto [weight, bias] = detail::classifier_rows(fc->weight, fc->bias, classes);
  // A 1x1 convolution instead of a per-position matmul: convolutions run on oneDNN, matmul on a
  // slow reference BLAS in some LibTorch builds.
  return detail::convolve(features, weight.view({weight.size(0), weight.size(1), 1, 1}), bias, 1);
}

torch::Tensor BagNetImpl::forward(const torch::Tensor& input) {
  return patch_logits(features(input)).mean({2, 3});
}

void BagNetImpl::set_precision(Precision precision) {
  reduced_.reset();
  if (precision == Precision::BFloat16) {
    check_precision_supported(precision, parameters().front().device());
    reduced_ = std::make_shared<const detail::FoldedNet>(*this, total_stride(arch_), detail::DenseForm::SpaceToBatch,
                                                         Precision::BFloat16);
  }
  precision_ = precision;
}

StateDict state_dict_of(const BagNet& net) {
  StateDict out;
  for (const auto& item : net->named_parameters()) out.emplace_back(item.key(), item.value().detach());
  for (const auto& item : net->named_buffers()) out.emplace_back(item.key(), item.value().detach());
  return out;
}

void load_state_dict(BagNet& net, const StateDict& tensors) {
  std::unordered_map<std::string, torch::Tensor> expected;
  for (const auto& item : net->named_parameters()) expected[item.key()] = item.value();
  for (const auto& item : net->named_buffers()) expected[item.key()] = item.value();
  const std::string model = net->arch().name == "custom" ? "the model" : "the " + net->arch().name + " model";

  std::vector<std::string> problems;
  std::unordered_map<std::string, bool> seen;
  for (const auto& [name, tensor] : tensors) {
    const auto it = expected.find(name);
    if (it == expected.end()) {
      problems.push_back("unexpected key '" + name + "' " + shape_string(tensor.sizes()) + " (not in " + model + ")");
      continue;
    }
    seen[name] = true;
    if (tensor.sizes() != it->second.sizes()) {
      problems.push_back("'" + name + "': checkpoint has " + shape_string(tensor.sizes()) + ", " + model +
                         " expects " + shape_string(it->second.sizes()));
      continue;
    }
    const bool want_float = it->second.is_floating_point();
    if (want_float != tensor.is_floating_point())
      problems.push_back("'" + name + "': checkpoint dtype " + std::string(c10::toString(tensor.scalar_type())) +
                         " does not fit " + c10::toString(it->second.scalar_type()));
  }
  for (const auto& [name, tensor] : expected)
    if (!seen.count(name) && !ends_with(name, "num_batches_tracked"))
      problems.push_back("missing key '" + name + "' " + shape_string(tensor.sizes()) + " (needed by " + model + ")");
  if (!problems.empty()) {
    std::sort(problems.begin(), problems.end());
    const size_t more = problems.size() - 1;
    fail(ErrorKind::BadInput, "checkpoint does not fit: ", problems.front(),
         more ? " (and " + std::to_string(more) + " more mismatches; LoadOptions::arch chooses the architecture)" : "");
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : tensors) {
    torch::Tensor target = expected.at(name);
    target.copy_(tensor.to(target.scalar_type()));
  }
}

InputSpec input_spec_of(const LoadedModel& model) {
  if (!model.meta) return default_input_spec(model.arch.in_channels);
  default_input_spec(model.meta->input.channels);  // the same check of the channel count
  return model.meta->input;
}

namespace {

// A model file's metadata names the network to build; a file of a few kilobytes can claim one of
// terabytes. The network's trainable parameters must all be among the stored tensors, so a claim of
// more than the file stores is refused before anything is allocated.
void check_declared_size(const Arch& arch, const StateDict& tensors, const std::string& path) {
  int64_t stored = 0;
  for (const auto& entry : tensors) {
    const std::string& name = entry.first;
    const auto ends_with = [&name](const std::string& tail) {
      return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (!ends_with("running_mean") && !ends_with("running_var") && !ends_with("num_batches_tracked"))
      stored += entry.second.numel();
  }
  const int64_t declared = parameter_count(arch);
  BAGNET_CHECK(declared <= stored, ErrorKind::BadInput, path, ": its metadata declares a network of ", declared,
               " parameters (", arch_to_spec(arch), "), the file stores ", stored,
               " (metadata and weights do not match; nothing was built)");
}

}  // namespace

LoadedModel load_model(const std::string& path, const LoadOptions& options) {
  LoadedModel loaded;
  loaded.path = path;
  loaded.checkpoint = read_checkpoint(path);
  loaded.meta = model_meta(loaded.checkpoint, path);
  if (!options.arch.empty()) loaded.arch = parse_arch(options.arch);
  else if (loaded.meta) loaded.arch = loaded.meta->arch;
  else loaded.arch = detect_arch(loaded.checkpoint.tensors);
  if (options.arch.empty() && loaded.meta) check_declared_size(loaded.arch, loaded.checkpoint.tensors, path);
  loaded.net = BagNet(loaded.arch);
  try {
    load_state_dict(loaded.net, loaded.checkpoint.tensors);
  } catch (const Error& e) {
    throw Error(e.kind(), path + ": " + e.what());
  }
  loaded.checkpoint.tensors.clear();
  loaded.net->eval();
  loaded.net->to(options.device);
  loaded.net->set_precision(options.precision);
  return loaded;
}

}  // namespace bagnet
