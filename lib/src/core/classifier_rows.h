#pragma once
// The rows of the classifier for a class subset, with the one range check of class indices that
// every map (native, dense, folded) goes through.
#include <bagnet/error.h>

#include <torch/types.h>

#include <utility>
#include <vector>

namespace bagnet::detail {

// Throws Error(InvalidArgument) for an index outside 0..num_classes-1.
inline void check_class_indices(const std::vector<int64_t>& classes, int64_t num_classes) {
  for (const int64_t c : classes)
    BAGNET_CHECK(c >= 0 && c < num_classes, ErrorKind::InvalidArgument, "class index ", c,
                 " out of range: the model has ", num_classes, " classes (0..", num_classes - 1, ")");
}

// weight [K, F], bias [K] -> the rows of `classes` in their order (all rows when empty).
inline std::pair<torch::Tensor, torch::Tensor> classifier_rows(const torch::Tensor& weight, const torch::Tensor& bias,
                                                               const std::vector<int64_t>& classes) {
  if (classes.empty()) return {weight, bias};
  check_class_indices(classes, weight.size(0));
  const auto index = torch::tensor(classes, torch::kLong).to(weight.device());
  return {weight.index_select(0, index), bias.index_select(0, index)};
}

}  // namespace bagnet::detail
