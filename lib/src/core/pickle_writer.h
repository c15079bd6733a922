#pragma once
// Writes the pickle torch.save puts in data.pkl for a dict of strings and state dicts: only
// opcodes of protocol 2 and the globals the safe unpickler (and torch.load(weights_only=True))
// accept. Tensor data is not in the pickle; each tensor refers to a storage key whose bytes the
// caller stores as `data/<key>`.
#include <bagnet/checkpoint.h>

#include <string>
#include <utility>
#include <vector>

namespace bagnet::detail {

struct PickleEntry {
  std::string key;
  std::string text;          // a str value, when `tensors` is empty and is_dict is false
  const StateDict* tensors = nullptr;  // an OrderedDict of tensors otherwise
};

// Returns the pickle; `storages` receives the contiguous CPU tensors in key order ("0", "1", ...).
std::string pickle_dict(const std::vector<PickleEntry>& entries, std::vector<torch::Tensor>& storages);

}  // namespace bagnet::detail
