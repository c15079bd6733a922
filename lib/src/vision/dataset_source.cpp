#include <bagnet/dataset.h>
#include <bagnet/error.h>

#include <torch/torch.h>

namespace bagnet {

DatasetSource::DatasetSource(const Dataset& dataset, InputSpec preprocess, int64_t cache_mb,
                             const ProgressCallback& on_progress)
    : dataset_(dataset), preprocess_(std::move(preprocess)) {
  const int64_t n = static_cast<int64_t>(dataset.size());
  labels_.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const DatasetSample sample = dataset.sample(static_cast<size_t>(i));
    BAGNET_CHECK(sample.label >= 0, ErrorKind::BadInput, sample.origin, ": no label (training and evaluation need "
                 "a label for every sample: class folders, a path,label CSV or IDX labels)");
    labels_.push_back(sample.label);
  }
  if (n == 0) return;
  const torch::Tensor first = load(0);
  shape_ = first.sizes().vec();
  const double megabytes = double(n) * double(first.numel()) * 4.0 / (1 << 20);
  if (megabytes > double(cache_mb)) return;
  cache_ = torch::empty({n, shape_[0], shape_[1], shape_[2]}, torch::kFloat);
  cache_[0].copy_(first);
  const int64_t step = std::max<int64_t>(1, n / 100);
  for (int64_t i = 1; i < n; ++i) {
    cache_[i].copy_(load(i));
    if (on_progress && (i % step == 0 || i + 1 == n)) on_progress({i + 1, n, "loading"});
  }
}

torch::Tensor DatasetSource::load(int64_t index) const {
  const size_t i = static_cast<size_t>(index);
  torch::Tensor t;
  try {
    t = bagnet::preprocess(dataset_.image(i), preprocess_).tensor;
  } catch (const Error& e) {
    const std::string source = dataset_.sample(i).source, message = e.what();
    if (message.find(source) != std::string::npos) throw;
    throw Error(e.kind(), source + ": " + message);
  }
  if (!shape_.empty())
    BAGNET_CHECK(t.sizes().vec() == shape_, ErrorKind::BadInput, dataset_.sample(i).source, ": ", t.size(1), "x",
                 t.size(2), " after preprocessing, but the first image is ", shape_[1], "x", shape_[2],
                 " (all inputs of a batch need one size: set a crop)");
  return t;
}

torch::Tensor DatasetSource::images(const std::vector<int64_t>& indices) const {
  if (cache_.defined()) return cache_.index_select(0, torch::tensor(indices, torch::kLong));
  std::vector<torch::Tensor> parts;
  parts.reserve(indices.size());
  for (int64_t i : indices) parts.push_back(load(i));
  return torch::stack(parts);
}

std::string DatasetSource::source(int64_t index) const { return dataset_.sample(static_cast<size_t>(index)).source; }

void estimate_normalisation(const Dataset& dataset, InputSpec& preprocess, int64_t max_images) {
  BAGNET_CHECK(dataset.size() > 0, ErrorKind::BadInput, "cannot estimate the normalisation of an empty dataset");
  InputSpec raw = preprocess;
  raw.mean.assign(static_cast<size_t>(raw.channels), 0.0f);
  raw.std.assign(static_cast<size_t>(raw.channels), 1.0f);
  const int64_t n = static_cast<int64_t>(dataset.size());
  const int64_t count = std::min(n, std::max<int64_t>(1, max_images));
  std::vector<double> sum(static_cast<size_t>(raw.channels), 0.0), squares(sum.size(), 0.0);
  double pixels = 0;
  for (int64_t k = 0; k < count; ++k) {
    const size_t i = static_cast<size_t>(k * n / count);
    const torch::Tensor t = bagnet::preprocess(dataset.image(i), raw).tensor.to(torch::kDouble);
    for (int64_t c = 0; c < raw.channels; ++c) {
      sum[static_cast<size_t>(c)] += t[c].sum().item<double>();
      squares[static_cast<size_t>(c)] += t[c].square().sum().item<double>();
    }
    pixels += double(t.size(1) * t.size(2));
  }
  preprocess.mean.clear();
  preprocess.std.clear();
  for (size_t c = 0; c < sum.size(); ++c) {
    const double mean = sum[c] / pixels, var = std::max(0.0, squares[c] / pixels - mean * mean);
    preprocess.mean.push_back(static_cast<float>(mean));
    preprocess.std.push_back(static_cast<float>(std::max(std::sqrt(var), 1e-3)));
  }
}

}  // namespace bagnet
