#include "pickle_writer.h"

#include <bagnet/error.h>

#include <torch/torch.h>

namespace bagnet::detail {
namespace {

class Out {
 public:
  void op(char c) { s += c; }
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  }
  void str(const std::string& text) {
    op('X');  // BINUNICODE: the bytes must be UTF-8, which JSON text and tensor names are
    le(text.size(), 4);
    s += text;
  }
  void integer(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');  // BININT
      le(static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
    } else {
      op('\x8a');  // LONG1, 8 bytes two's complement
      s += '\x08';
      le(static_cast<uint64_t>(v), 8);
    }
  }
  void global(const char* module, const char* name) {
    op('c');
    s += module;
    s += '\n';
    s += name;
    s += '\n';
  }
  void ints(at::IntArrayRef values) {
    op('(');
    for (int64_t v : values) integer(v);
    op('t');
  }
  std::string s;
};

const char* storage_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat: return "FloatStorage";
    case torch::kDouble: return "DoubleStorage";
    case torch::kHalf: return "HalfStorage";
    case torch::kLong: return "LongStorage";
    case torch::kInt: return "IntStorage";
    case torch::kByte: return "ByteStorage";
    case torch::kBool: return "BoolStorage";
    default: fail(ErrorKind::InvalidArgument, "cannot save tensors of type ", c10::toString(type));
  }
}

}  // namespace

std::string pickle_dict(const std::vector<PickleEntry>& entries, std::vector<torch::Tensor>& storages) {
  Out p;
  p.op('\x80');
  p.op('\x02');
  p.op('}');  // EMPTY_DICT
  p.op('(');
  for (const auto& entry : entries) {
    p.str(entry.key);
    if (!entry.tensors) {
      p.str(entry.text);
      continue;
    }
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    p.op('(');
    for (const auto& [name, value] : *entry.tensors) {
      const torch::Tensor t = value.detach().to(torch::kCPU).contiguous();
      const std::string key = std::to_string(storages.size());
      storages.push_back(t);
      p.str(name);
      // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)
      p.global("torch._utils", "_rebuild_tensor_v2");
      p.op('(');
      p.op('(');
      p.str("storage");
      p.global("torch", storage_name(t.scalar_type()));
      p.str(key);
      p.str("cpu");
      p.integer(t.numel());
      p.op('t');
      p.op('Q');  // BINPERSID
      p.integer(0);
      p.ints(t.sizes());
      p.ints(t.strides());
      p.op('\x89');  // NEWFALSE
      p.global("collections", "OrderedDict");
      p.op(')');
      p.op('R');
      p.op('t');
      p.op('R');
    }
    p.op('u');  // SETITEMS
  }
  p.op('u');
  p.op('.');
  return p.s;
}

}  // namespace bagnet::detail
