#include "pickle_writer.h"

#include "bytes.h"
#include "pickle_opcodes.h"

#include <bagnet/error.h>

#include <torch/torch.h>

namespace bagnet::detail {
namespace {

class Out {
 public:
  void op(Opcode code) { s += static_cast<char>(code); }
  void str(const std::string& text) {
    op(Opcode::BINUNICODE);  // the bytes must be UTF-8, which JSON text and tensor names are
    append_le(s, static_cast<uint32_t>(text.size()));
    s += text;
  }
  void integer(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op(Opcode::BININT);
      append_le(s, static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {
      op(Opcode::LONG1);  // 8 bytes two's complement
      s += '\x08';
      append_le(s, static_cast<uint64_t>(v));
    }
  }
  void global(const char* module, const char* name) {
    op(Opcode::GLOBAL);
    s += module;
    s += '\n';
    s += name;
    s += '\n';
  }
  void ints(at::IntArrayRef values) {
    op(Opcode::MARK);
    for (int64_t v : values) integer(v);
    op(Opcode::TUPLE);
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
  p.op(Opcode::PROTO);
  p.s += '\x02';  // protocol 2
  p.op(Opcode::EMPTY_DICT);
  p.op(Opcode::MARK);
  for (const auto& entry : entries) {
    p.str(entry.key);
    if (!entry.tensors) {
      p.str(entry.text);
      continue;
    }
    p.global("collections", "OrderedDict");
    p.op(Opcode::EMPTY_TUPLE);
    p.op(Opcode::REDUCE);
    p.op(Opcode::MARK);
    for (const auto& [name, value] : *entry.tensors) {
      const torch::Tensor t = value.detach().to(torch::kCPU).contiguous();
      const std::string key = std::to_string(storages.size());
      storages.push_back(t);
      p.str(name);
      // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)
      p.global("torch._utils", "_rebuild_tensor_v2");
      p.op(Opcode::MARK);
      p.op(Opcode::MARK);  // persistent id ('storage', storage type, key, location, numel)
      p.str("storage");
      p.global("torch", storage_name(t.scalar_type()));
      p.str(key);
      p.str("cpu");
      p.integer(t.numel());
      p.op(Opcode::TUPLE);
      p.op(Opcode::BINPERSID);
      p.integer(0);
      p.ints(t.sizes());
      p.ints(t.strides());
      p.op(Opcode::NEWFALSE);
      p.global("collections", "OrderedDict");
      p.op(Opcode::EMPTY_TUPLE);
      p.op(Opcode::REDUCE);
      p.op(Opcode::TUPLE);
      p.op(Opcode::REDUCE);
    }
    p.op(Opcode::SETITEMS);
  }
  p.op(Opcode::SETITEMS);
  p.op(Opcode::STOP);
  return p.s;
}

}  // namespace bagnet::detail
