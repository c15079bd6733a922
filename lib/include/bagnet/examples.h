#pragma once
// Labelled examples as tensors, the input of training and evaluation (core, LibTorch only). The
// OpenCV part adapts image datasets to this interface (dataset.h: DatasetSource).
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bagnet {

class ExampleSource {
 public:
  virtual ~ExampleSource() = default;
  virtual int64_t size() const = 0;
  // Class index of example `index`, -1 when unknown.
  virtual int64_t label(int64_t index) const = 0;
  // [B, C, H, W] float32, normalised model input of the examples `indices` (all the same size).
  virtual torch::Tensor images(const std::vector<int64_t>& indices) const = 0;
  // Where example `index` came from (a file path, "file#index"), for reports.
  virtual std::string source(int64_t index) const = 0;
};

// Examples held in memory.
class TensorSource : public ExampleSource {
 public:
  // images [N, C, H, W] float32 (normalised), labels [N] int64.
  TensorSource(torch::Tensor images, torch::Tensor labels, std::string name = "tensor");
  int64_t size() const override;
  int64_t label(int64_t index) const override;
  torch::Tensor images(const std::vector<int64_t>& indices) const override;
  std::string source(int64_t index) const override;

 private:
  torch::Tensor images_, labels_;
  std::vector<int64_t> label_values_;
  std::string name_;
};

// A view of some examples of another source (e.g. a validation split), in the given order.
class SubsetSource : public ExampleSource {
 public:
  SubsetSource(const ExampleSource& base, std::vector<int64_t> indices);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  int64_t label(int64_t index) const override { return base_.label(indices_.at(index)); }
  torch::Tensor images(const std::vector<int64_t>& indices) const override;
  std::string source(int64_t index) const override { return base_.source(indices_.at(index)); }

 private:
  const ExampleSource& base_;
  std::vector<int64_t> indices_;
};

}  // namespace bagnet
