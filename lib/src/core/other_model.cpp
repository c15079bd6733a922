// The "other network" of a comparison: a TorchScript module or a model bagnet-lens reads, fed the
// BagNet's input converted to its own convention, its output checked against the class count.
#include "file_bytes.h"
#include "zip_reader.h"

#include <bagnet/compare.h>
#include <bagnet/error.h>

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace bagnet {

namespace {


// The BagNet's normalised input -> the other model's convention.
torch::Tensor convert_input(torch::Tensor x, const InputSpec& bagnet_spec, bool to_raw, const InputSpec* own_spec,
                            int64_t channels, int64_t size) {
  const int64_t c = x.size(1);
  if (to_raw || own_spec) {
    const auto mean = torch::tensor(bagnet_spec.mean, x.options()).view({1, c, 1, 1});
    const auto std = torch::tensor(bagnet_spec.std, x.options()).view({1, c, 1, 1});
    x = x * std + mean;  // pixel values in [0, 1]
  }
  if (channels == 1 && c == 3) x = x.mean(1, true);
  if (channels == 3 && c == 1) x = x.expand({x.size(0), 3, x.size(2), x.size(3)});
  if (own_spec) {
    const int64_t k = x.size(1);
    x = (x - torch::tensor(own_spec->mean, x.options()).view({1, k, 1, 1})) /
        torch::tensor(own_spec->std, x.options()).view({1, k, 1, 1});
  }
  if (size > 0 && (x.size(2) != size || x.size(3) != size))
    x = torch::nn::functional::interpolate(
        x, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{size, size}).mode(torch::kBilinear).align_corners(false));
  return x.contiguous();
}

torch::Tensor checked_output(const torch::Tensor& out, int64_t batch, int64_t classes, const std::string& path) {
  BAGNET_CHECK(out.dim() == 2 && out.size(0) == batch && out.size(1) == classes && out.is_floating_point(),
               ErrorKind::BadInput, path, ": the model returned ", out.sizes(), " ", out.scalar_type(),
               " for a batch of ", batch, ", expected [", batch, ", ", classes, "] floating-point logits (",
               out.dim() == 2 && out.size(1) != classes ? "its class count differs from the BagNet's" : "wrong shape or type",
               ")");
  return out.to(torch::kCPU, torch::kFloat);
}

std::string channels_text(int64_t c) { return c == 1 ? "grey" : c == 3 ? "RGB" : std::to_string(c) + " channels"; }

class TorchScriptModel : public OtherModel {
 public:
  TorchScriptModel(const OtherModelOptions& o, const InputSpec& spec, int64_t classes) : o_(o), spec_(spec), classes_(classes) {
    try {
      module_ = torch::jit::load(o.path, o.device);
    } catch (const std::exception& e) {
      fail(ErrorKind::BadInput, o.path, ": not a loadable TorchScript module (", first_line(e.what()), ")");
    }
    module_.eval();
  }

  torch::Tensor logits(const torch::Tensor& input) override {
    torch::NoGradGuard no_grad;
    const torch::Tensor x = convert_input(input.to(o_.device, torch::kFloat), spec_, o_.input == OtherInput::Raw, nullptr,
                                          o_.channels, o_.size);
    c10::IValue out;
    try {
      out = module_.forward({x});
    } catch (const std::exception& e) {
      fail(ErrorKind::Runtime, o_.path, ": the model failed on input ", x.sizes(), " (", first_line(e.what()), ")");
    }
    BAGNET_CHECK(out.isTensor(), ErrorKind::BadInput, o_.path, ": the model returned a ", out.tagKind(),
                 ", expected a tensor of logits");
    return checked_output(out.toTensor(), x.size(0), classes_, o_.path);
  }

  std::string description() const override {
    return "TorchScript " + std::filesystem::path(o_.path).filename().string() + " (" +
           (o_.input == OtherInput::Raw ? "raw [0, 1]" : "normalised") + " input" +
           (o_.channels ? ", " + channels_text(o_.channels) : "") +
           (o_.size ? ", " + std::to_string(o_.size) + "x" + std::to_string(o_.size) : "") + ")";
  }
  std::string kind() const override { return "torchscript"; }

 private:
  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }
  OtherModelOptions o_;
  InputSpec spec_;
  int64_t classes_;
  torch::jit::Module module_;
};

class LoadedOtherModel : public OtherModel {
 public:
  LoadedOtherModel(const OtherModelOptions& o, const InputSpec& spec, int64_t classes) : o_(o), spec_(spec) {
    LoadOptions load;
    load.device = o.device;
    model_ = load_model(o.path, load);
    own_ = input_spec_of(model_);
    BAGNET_CHECK(model_.arch.num_classes == classes, ErrorKind::BadInput, o.path, ": a model of ", model_.arch.num_classes,
                 " classes, the BagNet has ", classes);
  }

  torch::Tensor logits(const torch::Tensor& input) override {
    torch::NoGradGuard no_grad;
    const torch::Tensor x = convert_input(input.to(o_.device, torch::kFloat), spec_, false, &own_,
                                          model_.arch.in_channels, o_.size);
    return checked_output(model_.net->forward(x), x.size(0), model_.arch.num_classes, o_.path);
  }

  std::string description() const override {
    return std::filesystem::path(o_.path).filename().string() + " (" + arch_to_spec(model_.arch) + ", its own preprocessing)";
  }
  std::string kind() const override { return "bagnet-lens"; }

 private:
  OtherModelOptions o_;
  InputSpec spec_, own_;
  LoadedModel model_;
};

}  // namespace

bool is_torchscript_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  const std::vector<uint8_t> bytes = detail::read_file_bytes(path);
  if (!detail::looks_like_zip(bytes.data(), bytes.size())) return false;
  try {
    return detail::is_torchscript_archive(detail::zip_entry_names(bytes.data(), bytes.size(), path));
  } catch (const Error&) {
    return false;  // not a readable zip: whatever it is, the checkpoint reader says what is wrong
  }
}

std::unique_ptr<OtherModel> open_other_model(const OtherModelOptions& options, const InputSpec& bagnet_spec,
                                             int64_t classes) {
  BAGNET_CHECK(options.channels == 0 || options.channels == 1 || options.channels == 3, ErrorKind::InvalidArgument,
               "the other model's channels must be 1 or 3, got ", options.channels);
  BAGNET_CHECK(options.size >= 0, ErrorKind::InvalidArgument, "the other model's input size must be >= 0, got ", options.size);
  if (is_torchscript_file(options.path)) return std::make_unique<TorchScriptModel>(options, bagnet_spec, classes);
  return std::make_unique<LoadedOtherModel>(options, bagnet_spec, classes);
}

}  // namespace bagnet
