#pragma once
// Reads the official reference tensors (a plain dict of tensors in the zip torch.save format)
// with LibTorch's own reader, independent of the code under test.
#include "test_util.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <string>

namespace bagnet::test {

inline std::map<std::string, torch::Tensor> read_reference(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open reference " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto value = torch::pickle_load(bytes);
  std::map<std::string, torch::Tensor> out;
  for (const auto& entry : value.toGenericDict()) out[entry.key().toStringRef()] = entry.value().toTensor();
  return out;
}

}  // namespace bagnet::test
