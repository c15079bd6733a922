#include <bagnet/error.h>
#include <bagnet/examples.h>

#include <torch/torch.h>

namespace bagnet {

TensorSource::TensorSource(torch::Tensor images, torch::Tensor labels, std::string name)
    : images_(std::move(images)), labels_(std::move(labels)), name_(std::move(name)) {
  BAGNET_CHECK(images_.dim() == 4 && images_.scalar_type() == torch::kFloat, ErrorKind::InvalidArgument,
               "TensorSource: images must be [N, C, H, W] float32");
  BAGNET_CHECK(labels_.dim() == 1 && labels_.size(0) == images_.size(0), ErrorKind::InvalidArgument,
               "TensorSource: labels must be [N] with N = ", images_.size(0));
  const torch::Tensor l = labels_.to(torch::kLong).contiguous();
  label_values_.assign(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
}

int64_t TensorSource::size() const { return images_.size(0); }

int64_t TensorSource::label(int64_t index) const {
  BAGNET_CHECK(index >= 0 && index < size(), ErrorKind::InvalidArgument, "example ", index, " out of range");
  return label_values_[static_cast<size_t>(index)];
}

torch::Tensor TensorSource::images(const std::vector<int64_t>& indices) const {
  return images_.index_select(0, torch::tensor(indices, torch::kLong));
}

std::string TensorSource::source(int64_t index) const { return name_ + "#" + std::to_string(index); }

SubsetSource::SubsetSource(const ExampleSource& base, std::vector<int64_t> indices)
    : base_(base), indices_(std::move(indices)) {
  for (int64_t i : indices_)
    BAGNET_CHECK(i >= 0 && i < base.size(), ErrorKind::InvalidArgument, "subset index ", i, " out of range");
}

torch::Tensor SubsetSource::images(const std::vector<int64_t>& indices) const {
  std::vector<int64_t> mapped;
  mapped.reserve(indices.size());
  for (int64_t i : indices) mapped.push_back(indices_.at(static_cast<size_t>(i)));
  return base_.images(mapped);
}

}  // namespace bagnet
