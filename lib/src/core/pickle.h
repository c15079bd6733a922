#pragma once
// A deliberately small unpickler for PyTorch state dicts. It understands the opcodes that
// torch.save emits (protocols 2-5) and a closed list of globals (OrderedDict, the tensor rebuild
// functions, the typed storage classes). Every other global, and every opcode that could construct
// arbitrary objects (NEWOBJ, INST, OBJ, EXT*), is refused with an Error: loading never runs code.
// All values live in an arena owned by the Unpickler, so cyclic or deeply nested input cannot leak
// or overflow the stack on destruction.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bagnet::detail {

enum class PyKind { None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict, Global, Storage, Tensor };

// A reference to (a view of) a storage whose bytes live elsewhere in the file.
struct StorageRef {
  std::string key;         // key of the root storage holding the bytes
  torch::ScalarType dtype = torch::kFloat;
  int64_t offset = 0;      // element offset into the root storage (legacy storage views)
  int64_t numel = 0;       // elements of this (view of the) storage
  int64_t root_numel = 0;  // elements of the root storage, as declared in the persistent id
};

struct TensorRef {
  StorageRef storage;
  int64_t offset = 0;  // element offset into `storage`
  std::vector<int64_t> sizes, strides;
};

struct PyValue {
  PyKind kind = PyKind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;                     // Str, Bytes, BigInt (little-endian two's complement), Global "module.name"
  std::vector<PyValue*> items;          // Tuple, List
  std::vector<std::pair<PyValue*, PyValue*>> entries;  // Dict, in insertion order
  StorageRef storage;                   // Storage
  TensorRef tensor;                     // Tensor
};

const char* kind_name(PyKind kind);

class Unpickler {
 public:
  // Turns a persistent id (the tuple torch.save writes for each storage) into a Storage value.
  using PersistentLoad = std::function<StorageRef(const PyValue& pid)>;

  // Reads one pickle from data[pos, size) up to and including its STOP opcode; pos is advanced.
  // `what` names the source in error messages. Values stay valid while the Unpickler lives.
  PyValue* load(const uint8_t* data, size_t size, size_t& pos, const PersistentLoad& persistent_load,
                const std::string& what);

 private:
  PyValue* make(PyKind kind);
  std::vector<std::unique_ptr<PyValue>> arena_;
};

// Helpers for walking persistent ids.
torch::ScalarType storage_dtype(const PyValue& storage_type, const std::string& what);

}  // namespace bagnet::detail
