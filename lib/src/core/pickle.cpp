#include "pickle.h"

#include <bagnet/error.h>

#include "bytes.h"

#include <cstring>
#include <sstream>
#include <string_view>

namespace bagnet::detail {
namespace {

constexpr size_t kMaxObjects = 20'000'000;  // torch state dicts need a few per tensor
constexpr size_t kMaxStack = 10'000'000;
constexpr size_t kMaxLine = 1024;           // protocol 0 text fields (GLOBAL names, INT, PUT, GET)
constexpr uint8_t kMaxProtocol = 5;

// What REDUCE may do with an allowed global: build one of these values, never call Python.
enum class GlobalUse { NewOrderedDict, RebuildTensor, RebuildParameter, StorageType };

struct AllowedGlobal {
  std::string_view name;  // "module.name"
  GlobalUse use;
  torch::ScalarType dtype = torch::kFloat;  // StorageType: the dtype of the storage's bytes
};

// The only Python globals a pickle may name: GLOBAL and STACK_GLOBAL refuse any other name before
// anything uses it. Each is here because torch.save writes it for a state dict.
constexpr AllowedGlobal kAllowedGlobals[] = {
    // OrderedDict(): every state dict (and its _metadata attribute) is an OrderedDict.
    {"collections.OrderedDict", GlobalUse::NewOrderedDict},
    // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]): every
    // tensor since PyTorch 0.4.
    {"torch._utils._rebuild_tensor_v2", GlobalUse::RebuildTensor},
    // _rebuild_tensor(storage, offset, size, stride): every tensor in files from older PyTorch.
    {"torch._utils._rebuild_tensor", GlobalUse::RebuildTensor},
    // _rebuild_parameter(tensor, requires_grad, hooks): a tensor saved as an nn.Parameter
    // (state_dict(keep_vars=True), or a dict of parameters made by hand).
    {"torch._utils._rebuild_parameter", GlobalUse::RebuildParameter},
    // Storage classes: each persistent id names one to give the dtype of its bytes; never called.
    {"torch.FloatStorage", GlobalUse::StorageType, torch::kFloat},
    {"torch.DoubleStorage", GlobalUse::StorageType, torch::kDouble},
    {"torch.HalfStorage", GlobalUse::StorageType, torch::kHalf},
    {"torch.BFloat16Storage", GlobalUse::StorageType, torch::kBFloat16},
    {"torch.LongStorage", GlobalUse::StorageType, torch::kLong},
    {"torch.IntStorage", GlobalUse::StorageType, torch::kInt},
    {"torch.ShortStorage", GlobalUse::StorageType, torch::kShort},
    {"torch.CharStorage", GlobalUse::StorageType, torch::kChar},
    {"torch.ByteStorage", GlobalUse::StorageType, torch::kByte},
    {"torch.BoolStorage", GlobalUse::StorageType, torch::kBool},
};

const AllowedGlobal* find_global(const std::string& name) {
  for (const auto& allowed : kAllowedGlobals)
    if (name == allowed.name) return &allowed;
  return nullptr;
}

std::string hex(uint8_t byte) {
  std::ostringstream out;
  out << std::hex << int(byte);
  return out.str();
}

}  // namespace

// A bounds-checked cursor over the bytes of one pickle; every error names the source and position.
class PickleInput {
 public:
  PickleInput(const uint8_t* data, size_t size, size_t pos, const std::string& what)
      : data_(data), size_(size), pos_(pos), what_(what) {}

  [[noreturn]] void corrupt(const std::string& why) const {
    fail(ErrorKind::BadInput, what_, ": corrupt pickle at byte ", pos_, ": ", why);
  }
  // An error about well-formed input that a state dict never contains.
  template <typename... Parts>
  [[noreturn]] void refuse(const Parts&... parts) const {
    fail(ErrorKind::BadInput, what_, ": ", parts...);
  }
  const uint8_t* take(uint64_t n) {
    if (n > size_ - pos_) fail(ErrorKind::BadInput, what_, ": truncated (a pickle needs ", n,
                               " more bytes at byte ", pos_, ", the file ends at ", size_, ")");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8() { return *take(1); }
  template <typename T>
  T le() { return read_le<T>(take(sizeof(T))); }
  std::string bytes(uint64_t n) {
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  std::string line() {
    const size_t start = pos_;
    while (true) {
      const uint8_t c = u8();
      if (c == '\n') break;
      if (pos_ - start > kMaxLine) corrupt("text field longer than 1024 bytes");
    }
    return std::string(reinterpret_cast<const char*>(data_ + start), pos_ - start - 1);
  }
  // A protocol 0 decimal integer; Python 2 longs end in 'L'.
  int64_t decimal(std::string digits) const {
    if (!digits.empty() && digits.back() == 'L') digits.pop_back();
    try {
      size_t used = 0;
      const long long v = std::stoll(digits, &used);
      if (used != digits.size()) corrupt("bad integer literal");
      return v;
    } catch (const std::exception&) {
      corrupt("bad integer literal");
    }
  }
  int64_t decimal_line() { return decimal(line()); }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_;
  const std::string& what_;
};

namespace {

int64_t int_arg(const PickleInput& in, const PyValue* v, const char* name) {
  if (v->kind == PyKind::Int) return v->integer;
  if (v->kind == PyKind::Bool) return v->boolean;
  in.corrupt(std::string("tensor ") + name + " is a " + kind_name(v->kind) + ", expected int");
}

std::vector<int64_t> int_list(const PickleInput& in, const PyValue* v, const char* name) {
  if (v->kind != PyKind::Tuple && v->kind != PyKind::List)
    in.corrupt(std::string("tensor ") + name + " is a " + kind_name(v->kind) + ", expected a tuple");
  std::vector<int64_t> out;
  for (const PyValue* item : v->items) out.push_back(int_arg(in, item, name));
  return out;
}

// Duplicate keys are kept here and resolved (last wins) by the caller: deduplicating per insert
// would be quadratic on hostile input.
void set_items(const PickleInput& in, PyValue* dict, const std::vector<PyValue*>& kv) {
  if (dict->kind != PyKind::Dict) in.corrupt(std::string("SETITEM on a ") + kind_name(dict->kind));
  if (kv.size() % 2) in.corrupt("odd number of items for a dict");
  for (size_t i = 0; i < kv.size(); i += 2) dict->entries.emplace_back(kv[i], kv[i + 1]);
}

void append_items(const PickleInput& in, PyValue* list, const std::vector<PyValue*>& items) {
  if (list->kind != PyKind::List) in.corrupt(std::string("APPEND on a ") + kind_name(list->kind));
  list->items.insert(list->items.end(), items.begin(), items.end());
}

}  // namespace

const char* kind_name(PyKind kind) {
  switch (kind) {
    case PyKind::None: return "None";
    case PyKind::Bool: return "bool";
    case PyKind::Int: return "int";
    case PyKind::BigInt: return "int";
    case PyKind::Float: return "float";
    case PyKind::Str: return "str";
    case PyKind::Bytes: return "bytes";
    case PyKind::Tuple: return "tuple";
    case PyKind::List: return "list";
    case PyKind::Dict: return "dict";
    case PyKind::Global: return "global";
    case PyKind::Storage: return "storage";
    case PyKind::Tensor: return "tensor";
  }
  return "?";
}

torch::ScalarType storage_dtype(const PyValue& storage_type, const std::string& what) {
  if (storage_type.kind == PyKind::Global)
    if (const AllowedGlobal* g = find_global(storage_type.text); g && g->use == GlobalUse::StorageType)
      return g->dtype;
  fail(ErrorKind::BadInput, what, ": unsupported storage type '",
       storage_type.kind == PyKind::Global ? storage_type.text : kind_name(storage_type.kind), "'");
}

// ---- The machine: load() reads opcodes until STOP and hands each to its family's method.

PyValue* Unpickler::load(const uint8_t* data, size_t size, size_t& pos, const PersistentLoad& persistent_load,
                         const std::string& what) {
  PickleInput in(data, size, pos, what);
  in_ = &in;
  struct Unbind {  // `in` lives for this call only, also when it throws
    PickleInput*& in;
    ~Unbind() { in = nullptr; }
  } unbind{in_};
  persistent_load_ = &persistent_load;
  stack_.clear();
  marks_.clear();
  memo_.clear();
  while (true) {
    const auto op = static_cast<Opcode>(in.u8());
    if (op == Opcode::STOP) {
      PyValue* result = stop();
      pos = in.pos();
      return result;
    }
    step(op);
  }
}

void Unpickler::step(Opcode op) {
  using O = Opcode;
  switch (op) {
    case O::PROTO: {
      const uint8_t proto = in_->u8();
      if (proto > kMaxProtocol) in_->corrupt("unsupported pickle protocol " + std::to_string(proto));
      return;
    }
    case O::FRAME: in_->le<uint64_t>(); return;  // framing is only a read-ahead hint
    case O::MARK: case O::POP: case O::POP_MARK: case O::DUP: return stack_op(op);
    case O::NONE: case O::NEWTRUE: case O::NEWFALSE: case O::BININT: case O::BININT1: case O::BININT2:
    case O::LONG1: case O::LONG4: case O::INT: case O::LONG: case O::BINFLOAT:
      return push_number(op);
    case O::BINUNICODE: case O::SHORT_BINUNICODE: case O::BINUNICODE8: case O::BINSTRING:
    case O::SHORT_BINSTRING: case O::BINBYTES: case O::SHORT_BINBYTES: case O::BINBYTES8:
      return push_text(op);
    case O::EMPTY_TUPLE: case O::TUPLE: case O::TUPLE1: case O::TUPLE2: case O::TUPLE3: return tuple_op(op);
    case O::EMPTY_LIST: case O::LIST: case O::APPEND: case O::APPENDS: return list_op(op);
    case O::EMPTY_DICT: case O::DICT: case O::SETITEM: case O::SETITEMS: return dict_op(op);
    case O::PUT: case O::BINPUT: case O::LONG_BINPUT: case O::MEMOIZE:
    case O::GET: case O::BINGET: case O::LONG_BINGET:
      return memo_op(op);
    case O::GLOBAL: case O::STACK_GLOBAL: return global(op);
    case O::REDUCE: return reduce();
    case O::BUILD: return build();
    case O::BINPERSID: return persistent_id();
    case O::NEWOBJ: case O::NEWOBJ_EX: case O::INST: case O::OBJ: case O::EXT1: case O::EXT2: case O::EXT4:
      in_->refuse("refusing pickle opcode 0x", hex(uint8_t(op)),
                  " (it constructs arbitrary objects; a state dict never needs it)");
    default:
      // Includes PERSID, FLOAT, STRING, UNICODE, sets, buffers: torch.save never writes them.
      in_->corrupt("unknown or unsupported pickle opcode 0x" + hex(uint8_t(op)));
  }
}

// ---- Stack and marks

void Unpickler::push(PyValue* v) {
  if (stack_.size() >= kMaxStack) in_->corrupt("pickle stack too deep");
  stack_.push_back(v);
}

PyValue* Unpickler::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) in_->corrupt("stack underflow");
  PyValue* v = stack_.back();
  stack_.pop_back();
  return v;
}

PyValue* Unpickler::top() {
  if (stack_.empty()) in_->corrupt("stack underflow");
  return stack_.back();
}

std::vector<PyValue*> Unpickler::pop_mark() {
  if (marks_.empty()) in_->corrupt("missing MARK");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<PyValue*> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
  stack_.resize(mark);
  return items;
}

void Unpickler::stack_op(Opcode op) {
  switch (op) {
    case Opcode::MARK: marks_.push_back(stack_.size()); return;
    case Opcode::POP: pop(); return;
    case Opcode::POP_MARK: pop_mark(); return;
    default: push(top()); return;  // DUP
  }
}

PyValue* Unpickler::stop() {
  if (stack_.size() != 1 || !marks_.empty())
    in_->corrupt("STOP with " + std::to_string(stack_.size()) + " values on the stack");
  return stack_.back();
}

// ---- Values

PyValue* Unpickler::make(PyKind kind) {
  BAGNET_CHECK(arena_.size() < kMaxObjects, ErrorKind::BadInput,
               "pickle has more than ", kMaxObjects, " objects; not a state dict");
  arena_.push_back(std::make_unique<PyValue>());
  arena_.back()->kind = kind;
  return arena_.back().get();
}

PyValue* Unpickler::make_int(int64_t v) {
  PyValue* p = make(PyKind::Int);
  p->integer = v;
  return p;
}

PyValue* Unpickler::make_text(PyKind kind, std::string text) {
  PyValue* p = make(kind);
  p->text = std::move(text);
  return p;
}

PyValue* Unpickler::make_tuple(std::vector<PyValue*> items) {
  PyValue* p = make(PyKind::Tuple);
  p->items = std::move(items);
  return p;
}

void Unpickler::push_number(Opcode op) {
  switch (op) {
    case Opcode::NONE: return push(make(PyKind::None));
    case Opcode::NEWTRUE: case Opcode::NEWFALSE: {
      PyValue* b = make(PyKind::Bool);
      b->boolean = op == Opcode::NEWTRUE;
      return push(b);
    }
    case Opcode::BININT: return push(make_int(static_cast<int32_t>(in_->le<uint32_t>())));
    case Opcode::BININT1: return push(make_int(in_->u8()));
    case Opcode::BININT2: return push(make_int(in_->le<uint16_t>()));
    case Opcode::LONG1: case Opcode::LONG4: return push_long(op);
    case Opcode::INT: case Opcode::LONG: return push_int_text(op);
    default: {  // BINFLOAT: an IEEE double, big-endian
      const uint8_t* p = in_->take(8);
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
      PyValue* f = make(PyKind::Float);
      std::memcpy(&f->real, &bits, sizeof bits);
      return push(f);
    }
  }
}

// Up to 8 bytes become an Int (sign-extended); longer ones (the legacy magic number) a BigInt.
void Unpickler::push_long(Opcode op) {
  const uint64_t n = op == Opcode::LONG1 ? in_->u8() : in_->le<uint32_t>();
  std::string raw = in_->bytes(n);
  if (n > 8) return push(make_text(PyKind::BigInt, std::move(raw)));
  const auto* bytes = reinterpret_cast<const uint8_t*>(raw.data());
  uint64_t v = read_le(bytes, n);
  if (n > 0 && n < 8 && (bytes[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);
  push(make_int(static_cast<int64_t>(v)));
}

// INT is also protocol 0's spelling of True and False ("I01", "I00").
void Unpickler::push_int_text(Opcode op) {
  if (op == Opcode::LONG) return push(make_int(in_->decimal_line()));
  const std::string text = in_->line();
  if (text == "01" || text == "00") {
    PyValue* b = make(PyKind::Bool);
    b->boolean = text == "01";
    return push(b);
  }
  push(make_int(in_->decimal(text)));
}

void Unpickler::push_text(Opcode op) {
  switch (op) {
    case Opcode::BINUNICODE: return push(make_text(PyKind::Str, in_->bytes(in_->le<uint32_t>())));
    case Opcode::SHORT_BINUNICODE: return push(make_text(PyKind::Str, in_->bytes(in_->u8())));
    case Opcode::BINUNICODE8: return push(make_text(PyKind::Str, in_->bytes(in_->le<uint64_t>())));
    case Opcode::BINSTRING: {
      const int32_t n = static_cast<int32_t>(in_->le<uint32_t>());
      if (n < 0) in_->corrupt("negative string length");
      return push(make_text(PyKind::Str, in_->bytes(static_cast<uint64_t>(n))));
    }
    case Opcode::SHORT_BINSTRING: return push(make_text(PyKind::Str, in_->bytes(in_->u8())));
    case Opcode::BINBYTES: return push(make_text(PyKind::Bytes, in_->bytes(in_->le<uint32_t>())));
    case Opcode::SHORT_BINBYTES: return push(make_text(PyKind::Bytes, in_->bytes(in_->u8())));
    default: return push(make_text(PyKind::Bytes, in_->bytes(in_->le<uint64_t>())));  // BINBYTES8
  }
}

// ---- Containers

void Unpickler::tuple_op(Opcode op) {
  switch (op) {
    case Opcode::EMPTY_TUPLE: return push(make_tuple({}));
    case Opcode::TUPLE: return push(make_tuple(pop_mark()));
    case Opcode::TUPLE1: {
      PyValue* a = pop();
      return push(make_tuple({a}));
    }
    case Opcode::TUPLE2: {
      PyValue* b = pop();
      PyValue* a = pop();
      return push(make_tuple({a, b}));
    }
    default: {  // TUPLE3
      PyValue* c = pop();
      PyValue* b = pop();
      PyValue* a = pop();
      return push(make_tuple({a, b, c}));
    }
  }
}

void Unpickler::list_op(Opcode op) {
  switch (op) {
    case Opcode::EMPTY_LIST: return push(make(PyKind::List));
    case Opcode::LIST: {
      PyValue* list = make(PyKind::List);
      list->items = pop_mark();
      return push(list);
    }
    case Opcode::APPEND: {
      PyValue* item = pop();
      return append_items(*in_, top(), {item});
    }
    default: {  // APPENDS
      const auto items = pop_mark();
      return append_items(*in_, top(), items);
    }
  }
}

void Unpickler::dict_op(Opcode op) {
  switch (op) {
    case Opcode::EMPTY_DICT: return push(make(PyKind::Dict));
    case Opcode::DICT: {
      const auto kv = pop_mark();
      PyValue* dict = make(PyKind::Dict);
      set_items(*in_, dict, kv);
      return push(dict);
    }
    case Opcode::SETITEM: {
      PyValue* v = pop();
      PyValue* k = pop();
      return set_items(*in_, top(), {k, v});
    }
    default: {  // SETITEMS
      const auto kv = pop_mark();
      return set_items(*in_, top(), kv);
    }
  }
}

// ---- Memo

void Unpickler::memo_put(uint64_t index) {
  if (memo_.size() > kMaxObjects) in_->corrupt("memo too large");
  memo_[index] = top();
}

PyValue* Unpickler::memo_get(uint64_t index) {
  const auto it = memo_.find(index);
  if (it == memo_.end()) in_->corrupt("memo entry " + std::to_string(index) + " used before it was set");
  return it->second;
}

void Unpickler::memo_op(Opcode op) {
  switch (op) {
    case Opcode::BINPUT: return memo_put(in_->u8());
    case Opcode::LONG_BINPUT: return memo_put(in_->le<uint32_t>());
    case Opcode::MEMOIZE: return memo_put(memo_.size());
    case Opcode::PUT: return memo_put(static_cast<uint64_t>(in_->decimal_line()));
    case Opcode::BINGET: return push(memo_get(in_->u8()));
    case Opcode::LONG_BINGET: return push(memo_get(in_->le<uint32_t>()));
    default: return push(memo_get(static_cast<uint64_t>(in_->decimal_line())));  // GET
  }
}

// ---- Globals, REDUCE and BUILD

void Unpickler::global(Opcode op) {
  std::string module, name;
  if (op == Opcode::GLOBAL) {
    module = in_->line();
    name = in_->line();
  } else {  // STACK_GLOBAL
    PyValue* n = pop();
    PyValue* m = pop();
    if (m->kind != PyKind::Str || n->kind != PyKind::Str) in_->corrupt("STACK_GLOBAL needs two strings");
    module = m->text;
    name = n->text;
  }
  const std::string full = module + "." + name;
  if (!find_global(full))
    in_->refuse("refusing the Python global '", full,
                "' (a state dict holds only tensors, storages and OrderedDicts; nothing is executed)");
  push(make_text(PyKind::Global, full));
}

void Unpickler::reduce() {
  PyValue* args = pop();
  PyValue* callable = pop();
  if (callable->kind != PyKind::Global) in_->corrupt(std::string("REDUCE on a ") + kind_name(callable->kind));
  if (args->kind != PyKind::Tuple) in_->corrupt("REDUCE arguments are not a tuple");
  const AllowedGlobal* g = find_global(callable->text);  // never null: global() checked the name
  switch (g ? g->use : GlobalUse::StorageType) {
    case GlobalUse::NewOrderedDict: {
      const bool empty = args->items.empty() || (args->items.size() == 1 && args->items[0]->kind == PyKind::List &&
                                                 args->items[0]->items.empty());
      if (!empty) in_->corrupt("OrderedDict built from arguments is not supported");
      return push(make(PyKind::Dict));
    }
    case GlobalUse::RebuildTensor: return push(rebuild_tensor(*args));
    case GlobalUse::RebuildParameter:
      if (args->items.empty() || args->items[0]->kind != PyKind::Tensor)
        in_->corrupt("_rebuild_parameter expects a tensor");
      return push(args->items[0]);
    case GlobalUse::StorageType: break;
  }
  in_->refuse("refusing to call '", callable->text, "' (only tensors may be rebuilt)");
}

PyValue* Unpickler::rebuild_tensor(const PyValue& args) {
  if (args.items.size() < 4) in_->corrupt("_rebuild_tensor expects (storage, offset, size, stride, ...)");
  const PyValue* storage = args.items[0];
  if (storage->kind != PyKind::Storage) in_->corrupt("_rebuild_tensor: first argument is not a storage");
  PyValue* t = make(PyKind::Tensor);
  t->tensor.storage = storage->storage;
  t->tensor.offset = int_arg(*in_, args.items[1], "offset");
  t->tensor.sizes = int_list(*in_, args.items[2], "size");
  t->tensor.strides = int_list(*in_, args.items[3], "stride");
  if (t->tensor.sizes.size() != t->tensor.strides.size())
    in_->corrupt("tensor size and stride have different lengths");
  return t;
}

// Only the attribute state of an OrderedDict (its _metadata) is accepted, and ignored.
void Unpickler::build() {
  PyValue* state = pop();
  PyValue* target = top();
  if (target->kind != PyKind::Dict) in_->corrupt(std::string("BUILD on a ") + kind_name(target->kind));
  if (state->kind != PyKind::Dict && state->kind != PyKind::Tuple && state->kind != PyKind::None)
    in_->corrupt("unexpected BUILD state");
}

// ---- Persistent ids: torch.save's references to storages, resolved by the caller.

void Unpickler::persistent_id() {
  PyValue* pid = pop();
  PyValue* storage = make(PyKind::Storage);
  if (!*persistent_load_) in_->refuse("unexpected persistent id (storage reference) in this pickle");
  storage->storage = (*persistent_load_)(*pid);
  push(storage);
}

}  // namespace bagnet::detail
