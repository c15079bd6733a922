#include "pickle.h"

#include <bagnet/error.h>

#include <cstring>
#include <unordered_map>

namespace bagnet::detail {
namespace {

constexpr size_t kMaxObjects = 20'000'000;  // torch state dicts need a few per tensor
constexpr size_t kMaxStack = 10'000'000;

const char* const kAllowedGlobals[] = {
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter",
};

struct StorageType {
  const char* name;
  torch::ScalarType dtype;
};
const StorageType kStorageTypes[] = {
    {"torch.FloatStorage", torch::kFloat},   {"torch.DoubleStorage", torch::kDouble},
    {"torch.HalfStorage", torch::kHalf},     {"torch.BFloat16Storage", torch::kBFloat16},
    {"torch.LongStorage", torch::kLong},     {"torch.IntStorage", torch::kInt},
    {"torch.ShortStorage", torch::kShort},   {"torch.CharStorage", torch::kChar},
    {"torch.ByteStorage", torch::kByte},     {"torch.BoolStorage", torch::kBool},
};

bool is_storage_type(const std::string& name) {
  for (const auto& t : kStorageTypes)
    if (name == t.name) return true;
  return false;
}

bool is_allowed_global(const std::string& name) {
  for (const char* allowed : kAllowedGlobals)
    if (name == allowed) return true;
  return is_storage_type(name);
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size, size_t pos, const std::string& what)
      : data_(data), size_(size), pos_(pos), what_(what) {}

  [[noreturn]] void corrupt(const std::string& why) const {
    fail(ErrorKind::BadInput, what_, ": corrupt pickle at byte ", pos_, ": ", why);
  }
  const uint8_t* take(size_t n) {
    if (n > size_ - pos_) fail(ErrorKind::BadInput, what_, ": truncated (a pickle needs ", n,
                               " more bytes at byte ", pos_, ", the file ends at ", size_, ")");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8() { return *take(1); }
  uint64_t uint_le(size_t n) {
    const uint8_t* p = take(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
  }
  int32_t i32() { return static_cast<int32_t>(uint_le(4)); }
  std::string bytes(uint64_t n) {
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  std::string line() {
    const size_t start = pos_;
    while (true) {
      const uint8_t c = u8();
      if (c == '\n') break;
      if (pos_ - start > 1024) corrupt("text field longer than 1024 bytes");
    }
    return std::string(reinterpret_cast<const char*>(data_ + start), pos_ - start - 1);
  }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_;
  const std::string& what_;
};

int64_t parse_decimal(Reader& in, const std::string& text) {
  std::string digits = text;
  if (!digits.empty() && digits.back() == 'L') digits.pop_back();
  try {
    size_t used = 0;
    const long long v = std::stoll(digits, &used);
    if (used != digits.size()) in.corrupt("bad integer literal");
    return v;
  } catch (const std::exception&) {
    in.corrupt("bad integer literal");
  }
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
    for (const auto& t : kStorageTypes)
      if (storage_type.text == t.name) return t.dtype;
  fail(ErrorKind::BadInput, what, ": unsupported storage type '",
       storage_type.kind == PyKind::Global ? storage_type.text : kind_name(storage_type.kind), "'");
}

PyValue* Unpickler::make(PyKind kind) {
  BAGNET_CHECK(arena_.size() < kMaxObjects, ErrorKind::BadInput,
               "pickle has more than ", kMaxObjects, " objects; not a state dict");
  arena_.push_back(std::make_unique<PyValue>());
  arena_.back()->kind = kind;
  return arena_.back().get();
}

PyValue* Unpickler::load(const uint8_t* data, size_t size, size_t& pos,
                         const PersistentLoad& persistent_load, const std::string& what) {
  Reader in(data, size, pos, what);
  std::vector<PyValue*> stack;
  std::vector<size_t> marks;
  std::unordered_map<uint64_t, PyValue*> memo;

  auto push = [&](PyValue* v) {
    if (stack.size() >= kMaxStack) in.corrupt("pickle stack too deep");
    stack.push_back(v);
  };
  auto pop = [&]() -> PyValue* {
    if (stack.empty() || (!marks.empty() && stack.size() <= marks.back()))
      in.corrupt("stack underflow");
    PyValue* v = stack.back();
    stack.pop_back();
    return v;
  };
  auto top = [&]() -> PyValue* {
    if (stack.empty()) in.corrupt("stack underflow");
    return stack.back();
  };
  auto pop_mark = [&]() -> std::vector<PyValue*> {
    if (marks.empty()) in.corrupt("missing MARK");
    const size_t mark = marks.back();
    marks.pop_back();
    std::vector<PyValue*> items(stack.begin() + static_cast<std::ptrdiff_t>(mark), stack.end());
    stack.resize(mark);
    return items;
  };
  auto make_int = [&](int64_t v) {
    PyValue* p = make(PyKind::Int);
    p->integer = v;
    return p;
  };
  auto make_text = [&](PyKind kind, std::string s) {
    PyValue* p = make(kind);
    p->text = std::move(s);
    return p;
  };
  auto make_tuple = [&](std::vector<PyValue*> items) {
    PyValue* p = make(PyKind::Tuple);
    p->items = std::move(items);
    return p;
  };
  auto memo_get = [&](uint64_t index) -> PyValue* {
    auto it = memo.find(index);
    if (it == memo.end()) in.corrupt("memo entry " + std::to_string(index) + " used before it was set");
    return it->second;
  };
  auto memo_put = [&](uint64_t index) {
    if (memo.size() > kMaxObjects) in.corrupt("memo too large");
    memo[index] = top();
  };
  // Duplicate keys are kept here and resolved (last wins) by the caller: deduplicating per insert
  // would be quadratic on hostile input.
  auto set_items = [&](PyValue* dict, const std::vector<PyValue*>& kv) {
    if (dict->kind != PyKind::Dict) in.corrupt(std::string("SETITEM on a ") + kind_name(dict->kind));
    if (kv.size() % 2) in.corrupt("odd number of items for a dict");
    for (size_t i = 0; i < kv.size(); i += 2) dict->entries.emplace_back(kv[i], kv[i + 1]);
  };
  auto append_items = [&](PyValue* list, const std::vector<PyValue*>& items) {
    if (list->kind != PyKind::List) in.corrupt(std::string("APPEND on a ") + kind_name(list->kind));
    list->items.insert(list->items.end(), items.begin(), items.end());
  };
  auto int_arg = [&](const PyValue* v, const char* name) -> int64_t {
    if (v->kind == PyKind::Int) return v->integer;
    if (v->kind == PyKind::Bool) return v->boolean;
    in.corrupt(std::string("tensor ") + name + " is a " + kind_name(v->kind) + ", expected int");
  };
  auto int_list = [&](const PyValue* v, const char* name) {
    if (v->kind != PyKind::Tuple && v->kind != PyKind::List)
      in.corrupt(std::string("tensor ") + name + " is a " + kind_name(v->kind) + ", expected a tuple");
    std::vector<int64_t> out;
    for (const PyValue* item : v->items) out.push_back(int_arg(item, name));
    return out;
  };
  auto rebuild_tensor = [&](const PyValue* args) -> PyValue* {
    if (args->kind != PyKind::Tuple || args->items.size() < 4)
      in.corrupt("_rebuild_tensor expects (storage, offset, size, stride, ...)");
    const PyValue* storage = args->items[0];
    if (storage->kind != PyKind::Storage) in.corrupt("_rebuild_tensor: first argument is not a storage");
    PyValue* t = make(PyKind::Tensor);
    t->tensor.storage = storage->storage;
    t->tensor.offset = int_arg(args->items[1], "offset");
    t->tensor.sizes = int_list(args->items[2], "size");
    t->tensor.strides = int_list(args->items[3], "stride");
    if (t->tensor.sizes.size() != t->tensor.strides.size())
      in.corrupt("tensor size and stride have different lengths");
    return t;
  };
  auto reduce = [&](PyValue* callable, PyValue* args) -> PyValue* {
    if (callable->kind != PyKind::Global) in.corrupt(std::string("REDUCE on a ") + kind_name(callable->kind));
    if (args->kind != PyKind::Tuple) in.corrupt("REDUCE arguments are not a tuple");
    const std::string& name = callable->text;
    if (name == "collections.OrderedDict") {
      const bool empty = args->items.empty() ||
                         (args->items.size() == 1 && args->items[0]->kind == PyKind::List &&
                          args->items[0]->items.empty());
      if (!empty) in.corrupt("OrderedDict built from arguments is not supported");
      return make(PyKind::Dict);
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor")
      return rebuild_tensor(args);
    if (name == "torch._utils._rebuild_parameter") {
      if (args->items.empty() || args->items[0]->kind != PyKind::Tensor)
        in.corrupt("_rebuild_parameter expects a tensor");
      return args->items[0];
    }
    fail(ErrorKind::BadInput, what, ": refusing to call '", name, "' (only tensors may be rebuilt)");
  };

  while (true) {
    const uint8_t op = in.u8();
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t proto = in.u8();
        if (proto > 5) in.corrupt("unsupported pickle protocol " + std::to_string(proto));
        break;
      }
      case 0x95: in.uint_le(8); break;  // FRAME: framing is only a read-ahead hint
      case '.': {                       // STOP
        if (stack.size() != 1 || !marks.empty()) in.corrupt("STOP with " + std::to_string(stack.size()) + " values on the stack");
        pos = in.pos();
        return stack.back();
      }
      case '(': marks.push_back(stack.size()); break;  // MARK
      case '0': pop(); break;                          // POP
      case '1': pop_mark(); break;                     // POP_MARK
      case '2': push(top()); break;                    // DUP
      case 'N': push(make(PyKind::None)); break;
      case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
        PyValue* b = make(PyKind::Bool);
        b->boolean = op == 0x88;
        push(b);
        break;
      }
      case 'J': push(make_int(in.i32())); break;                            // BININT
      case 'K': push(make_int(in.u8())); break;                             // BININT1
      case 'M': push(make_int(static_cast<int64_t>(in.uint_le(2)))); break; // BININT2
      case 0x8a: case 0x8b: {  // LONG1, LONG4
        const uint64_t n = op == 0x8a ? in.u8() : in.uint_le(4);
        std::string raw = in.bytes(n);
        if (n <= 8) {
          uint64_t v = 0;
          for (size_t i = 0; i < n; ++i) v |= uint64_t(uint8_t(raw[i])) << (8 * i);
          if (n > 0 && n < 8 && (uint8_t(raw[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);
          push(make_int(static_cast<int64_t>(v)));
        } else {
          push(make_text(PyKind::BigInt, std::move(raw)));
        }
        break;
      }
      case 'I': {  // INT (protocol 0; "01"/"00" are True/False)
        const std::string text = in.line();
        if (text == "01" || text == "00") {
          PyValue* b = make(PyKind::Bool);
          b->boolean = text == "01";
          push(b);
        } else {
          push(make_int(parse_decimal(in, text)));
        }
        break;
      }
      case 'L': push(make_int(parse_decimal(in, in.line()))); break;  // LONG (protocol 0)
      case 'G': {  // BINFLOAT, big-endian
        const uint8_t* p = in.take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
        PyValue* f = make(PyKind::Float);
        std::memcpy(&f->real, &bits, sizeof bits);
        push(f);
        break;
      }
      case 'X': push(make_text(PyKind::Str, in.bytes(in.uint_le(4)))); break;     // BINUNICODE
      case 0x8c: push(make_text(PyKind::Str, in.bytes(in.u8()))); break;          // SHORT_BINUNICODE
      case 0x8d: push(make_text(PyKind::Str, in.bytes(in.uint_le(8)))); break;    // BINUNICODE8
      case 'T': {                                                                 // BINSTRING
        const int32_t n = in.i32();
        if (n < 0) in.corrupt("negative string length");
        push(make_text(PyKind::Str, in.bytes(static_cast<uint64_t>(n))));
        break;
      }
      case 'U': push(make_text(PyKind::Str, in.bytes(in.u8()))); break;           // SHORT_BINSTRING
      case 'B': push(make_text(PyKind::Bytes, in.bytes(in.uint_le(4)))); break;   // BINBYTES
      case 'C': push(make_text(PyKind::Bytes, in.bytes(in.u8()))); break;         // SHORT_BINBYTES
      case 0x8e: push(make_text(PyKind::Bytes, in.bytes(in.uint_le(8)))); break;  // BINBYTES8
      case ')': push(make_tuple({})); break;                                      // EMPTY_TUPLE
      case 't': push(make_tuple(pop_mark())); break;                              // TUPLE
      case 0x85: { PyValue* a = pop(); push(make_tuple({a})); break; }            // TUPLE1
      case 0x86: { PyValue* b = pop(); PyValue* a = pop(); push(make_tuple({a, b})); break; }
      case 0x87: {                                                                // TUPLE3
        PyValue* c = pop(); PyValue* b = pop(); PyValue* a = pop();
        push(make_tuple({a, b, c}));
        break;
      }
      case ']': push(make(PyKind::List)); break;  // EMPTY_LIST
      case 'l': {                                  // LIST
        PyValue* list = make(PyKind::List);
        list->items = pop_mark();
        push(list);
        break;
      }
      case 'a': { PyValue* item = pop(); append_items(top(), {item}); break; }  // APPEND
      case 'e': { auto items = pop_mark(); append_items(top(), items); break; } // APPENDS
      case '}': push(make(PyKind::Dict)); break;  // EMPTY_DICT
      case 'd': {                                  // DICT
        auto kv = pop_mark();
        PyValue* dict = make(PyKind::Dict);
        set_items(dict, kv);
        push(dict);
        break;
      }
      case 's': { PyValue* v = pop(); PyValue* k = pop(); set_items(top(), {k, v}); break; }  // SETITEM
      case 'u': { auto kv = pop_mark(); set_items(top(), kv); break; }                       // SETITEMS
      case 'c': case 0x93: {  // GLOBAL, STACK_GLOBAL
        std::string module, name;
        if (op == 'c') {
          module = in.line();
          name = in.line();
        } else {
          PyValue* n = pop();
          PyValue* m = pop();
          if (m->kind != PyKind::Str || n->kind != PyKind::Str) in.corrupt("STACK_GLOBAL needs two strings");
          module = m->text;
          name = n->text;
        }
        const std::string full = module + "." + name;
        BAGNET_CHECK(is_allowed_global(full), ErrorKind::BadInput, what, ": refusing the Python global '",
                     full, "' (a state dict holds only tensors, storages and OrderedDicts; nothing is executed)");
        push(make_text(PyKind::Global, full));
        break;
      }
      case 'R': {  // REDUCE
        PyValue* args = pop();
        PyValue* callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 'b': {  // BUILD: only the attribute state of an OrderedDict (its _metadata) is accepted
        PyValue* state = pop();
        PyValue* target = top();
        if (target->kind != PyKind::Dict) in.corrupt(std::string("BUILD on a ") + kind_name(target->kind));
        if (state->kind != PyKind::Dict && state->kind != PyKind::Tuple && state->kind != PyKind::None)
          in.corrupt("unexpected BUILD state");
        break;
      }
      case 'Q': {  // BINPERSID
        PyValue* pid = pop();
        PyValue* storage = make(PyKind::Storage);
        BAGNET_CHECK(static_cast<bool>(persistent_load), ErrorKind::BadInput, what,
                     ": unexpected persistent id (storage reference) in this pickle");
        storage->storage = persistent_load(*pid);
        push(storage);
        break;
      }
      case 'q': memo_put(in.u8()); break;         // BINPUT
      case 'r': memo_put(in.uint_le(4)); break;   // LONG_BINPUT
      case 0x94: memo_put(memo.size()); break;    // MEMOIZE
      case 'p': memo_put(static_cast<uint64_t>(parse_decimal(in, in.line()))); break;  // PUT
      case 'h': push(memo_get(in.u8())); break;          // BINGET
      case 'j': push(memo_get(in.uint_le(4))); break;    // LONG_BINGET
      case 'g': push(memo_get(static_cast<uint64_t>(parse_decimal(in, in.line())))); break;  // GET
      case 0x81: case 0x92: case 'i': case 'o': case 0x82: case 0x83: case 0x84:
        fail(ErrorKind::BadInput, what, ": refusing pickle opcode 0x", std::hex, int(op),
             " (it constructs arbitrary objects; a state dict never needs it)");
      default:
        in.corrupt("unknown or unsupported pickle opcode 0x" + [&] {
          std::ostringstream hex;
          hex << std::hex << int(op);
          return hex.str();
        }());
    }
  }
}

}  // namespace bagnet::detail
