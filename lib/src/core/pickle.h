#pragma once
// A deliberately small unpickler for PyTorch state dicts. It understands the opcodes that
// torch.save emits (protocols 2-5) and a closed list of globals (kAllowedGlobals in pickle.cpp:
// OrderedDict, the tensor rebuild functions, the typed storage classes). Every other global, and
// every opcode that could construct arbitrary objects (NEWOBJ, INST, OBJ, EXT*), is refused with an
// Error: loading never runs code. All values live in an arena owned by the Unpickler, so cyclic or
// deeply nested input cannot leak or overflow the stack on destruction.
#include "pickle_opcodes.h"

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
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

class PickleInput;  // the bytes of the pickle being read (pickle.cpp)

// A stack machine over the opcodes in pickle_opcodes.h, one method per opcode family. The stack,
// marks and memo belong to one pickle; the arena of values to the Unpickler.
class Unpickler {
 public:
  // Turns a persistent id (the tuple torch.save writes for each storage) into a Storage value.
  using PersistentLoad = std::function<StorageRef(const PyValue& pid)>;

  // Reads one pickle from data[pos, size) up to and including its STOP opcode; pos is advanced.
  // `what` names the source in error messages. Values stay valid while the Unpickler lives.
  PyValue* load(const uint8_t* data, size_t size, size_t& pos, const PersistentLoad& persistent_load,
                const std::string& what);

 private:
  void step(Opcode op);  // dispatches to the families below
  void stack_op(Opcode op);        // MARK POP POP_MARK DUP
  void push_number(Opcode op);     // None, bools, ints, floats
  void push_long(Opcode op);       // LONG1 LONG4: little-endian two's complement of any length
  void push_int_text(Opcode op);   // INT LONG: protocol 0 decimal text
  void push_text(Opcode op);       // str and bytes
  void tuple_op(Opcode op);        // EMPTY_TUPLE TUPLE TUPLE1-3
  void list_op(Opcode op);         // EMPTY_LIST LIST APPEND APPENDS
  void dict_op(Opcode op);         // EMPTY_DICT DICT SETITEM SETITEMS
  void memo_op(Opcode op);         // PUT BINPUT LONG_BINPUT MEMOIZE GET BINGET LONG_BINGET
  void global(Opcode op);          // GLOBAL STACK_GLOBAL, checked against the allow-list
  void reduce();                   // REDUCE: calls one of the allowed globals
  void build();                    // BUILD: only an OrderedDict's attribute state
  void persistent_id();            // BINPERSID: a storage reference
  PyValue* stop();                 // STOP: the one value left on the stack

  void push(PyValue* v);
  PyValue* pop();
  PyValue* top();
  std::vector<PyValue*> pop_mark();
  void memo_put(uint64_t index);
  PyValue* memo_get(uint64_t index);
  PyValue* rebuild_tensor(const PyValue& args);

  PyValue* make(PyKind kind);
  PyValue* make_int(int64_t v);
  PyValue* make_text(PyKind kind, std::string text);
  PyValue* make_tuple(std::vector<PyValue*> items);

  PickleInput* in_ = nullptr;  // valid during load()
  const PersistentLoad* persistent_load_ = nullptr;
  std::vector<PyValue*> stack_;
  std::vector<size_t> marks_;  // stack heights at each MARK
  std::unordered_map<uint64_t, PyValue*> memo_;
  std::vector<std::unique_ptr<PyValue>> arena_;
};

// Helpers for walking persistent ids.
torch::ScalarType storage_dtype(const PyValue& storage_type, const std::string& what);

}  // namespace bagnet::detail
