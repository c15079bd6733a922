#pragma once
// Builds small torch.save files (legacy and zip) byte by byte, so the tests control every opcode.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bagnet::test {

class Pickle {
 public:
  Pickle& raw(const std::string& bytes) { out += bytes; return *this; }
  Pickle& op(char c) { out += c; return *this; }
  Pickle& proto() { return raw("\x80\x02"); }
  Pickle& global(const std::string& module, const std::string& name) { return raw("c" + module + "\n" + name + "\n"); }
  Pickle& str(const std::string& s) { op('X'); le(s.size(), 4); return raw(s); }
  Pickle& integer(int32_t v) { op('J'); le(static_cast<uint32_t>(v), 4); return *this; }
  Pickle& mark() { return op('('); }
  Pickle& tuple() { return op('t'); }
  Pickle& stop() { return op('.'); }
  Pickle& le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
    return *this;
  }
  Pickle& ints(const std::vector<int64_t>& values) {
    mark();
    for (int64_t v : values) integer(static_cast<int32_t>(v));
    return tuple();
  }
  // _rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel), offset, sizes, strides, False, OrderedDict())
  Pickle& tensor(const std::string& key, int64_t numel, int64_t offset, const std::vector<int64_t>& sizes,
                 const std::vector<int64_t>& strides) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    mark().str("storage").global("torch", "FloatStorage").str(key).str("cpu").integer(static_cast<int32_t>(numel)).op('N').tuple().op('Q');
    integer(static_cast<int32_t>(offset)).ints(sizes).ints(strides).op('\x89');
    global("collections", "OrderedDict").op(')').op('R');
    return tuple().op('R');
  }
  std::string out;
};

struct FakeTensor {
  std::string name, key;
  int64_t offset;
  std::vector<int64_t> sizes, strides;
};

inline std::string legacy_header() {
  std::string magic = std::string("\x80\x02\x8a\x0a", 4) + std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10) + ".";
  return magic + std::string("\x80\x02M\xe9\x03.", 6) + std::string("\x80\x02}.", 4);
}

inline std::string state_dict_pickle(const std::vector<FakeTensor>& tensors,
                                     const std::vector<std::pair<std::string, std::vector<float>>>& storages) {
  Pickle p;
  p.proto().global("collections", "OrderedDict").op(')').op('R').mark();
  for (const auto& t : tensors) {
    int64_t numel = 0;
    for (const auto& s : storages)
      if (s.first == t.key) numel = static_cast<int64_t>(s.second.size());
    p.str(t.name).tensor(t.key, numel, t.offset, t.sizes, t.strides);
  }
  return p.op('u').stop().out;
}

// A complete legacy (pre-1.6) torch.save file.
inline std::string legacy_file(const std::vector<FakeTensor>& tensors,
                               const std::vector<std::pair<std::string, std::vector<float>>>& storages) {
  std::string file = legacy_header() + state_dict_pickle(tensors, storages);
  Pickle keys;
  keys.proto().op(']').mark();
  for (const auto& s : storages) keys.str(s.first);
  file += keys.op('e').stop().out;
  for (const auto& s : storages) {
    Pickle count;
    count.le(s.second.size(), 8);
    file += count.out;
    file.append(reinterpret_cast<const char*>(s.second.data()), s.second.size() * sizeof(float));
  }
  return file;
}

inline uint32_t crc32(const std::string& data) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

// A stored (uncompressed) zip archive like torch.save's.
inline std::string zip_file(const std::vector<std::pair<std::string, std::string>>& entries, uint16_t method = 0) {
  std::string body, directory;
  for (const auto& [name, data] : entries) {
    const uint64_t offset = body.size();
    Pickle local;
    local.le(0x04034b50, 4).le(20, 2).le(0, 2).le(method, 2).le(0, 4).le(crc32(data), 4).le(data.size(), 4)
        .le(data.size(), 4).le(name.size(), 2).le(0, 2);
    body += local.out + name + data;
    Pickle central;
    central.le(0x02014b50, 4).le(20, 2).le(20, 2).le(0, 2).le(method, 2).le(0, 4).le(crc32(data), 4)
        .le(data.size(), 4).le(data.size(), 4).le(name.size(), 2).le(0, 2).le(0, 2).le(0, 2).le(0, 2).le(0, 4)
        .le(offset, 4);
    directory += central.out + name;
  }
  Pickle end;
  end.le(0x06054b50, 4).le(0, 2).le(0, 2).le(entries.size(), 2).le(entries.size(), 2).le(directory.size(), 4)
      .le(body.size(), 4).le(0, 2);
  return body + directory + end.out;
}

}  // namespace bagnet::test
