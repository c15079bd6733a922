#pragma once
// Writes an uncompressed ("stored") zip archive the way torch.save does: every entry's data starts
// on a 64-byte boundary (padding goes into the local header's extra field), so the result can be
// memory-mapped by PyTorch and read back by zip_reader.
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace bagnet::detail {

class ZipWriter {
 public:
  explicit ZipWriter(std::ostream& out) : out_(out) {}
  void add(const std::string& name, const void* data, uint64_t size);
  void add(const std::string& name, const std::string& text) { add(name, text.data(), text.size()); }
  // Writes the central directory. Archives and entries must stay below 4 GiB (no zip64): a
  // BagNet-50 is about 0.1 GiB.
  void finish();

 private:
  struct Record {
    std::string name;
    uint32_t crc = 0;
    uint64_t size = 0, offset = 0;
  };
  template <typename T>
  void put(T value);
  void put_bytes(const void* data, uint64_t size);
  void put_entry_fields(const Record& r);
  std::ostream& out_;
  uint64_t position_ = 0;
  std::vector<Record> records_;
};

}  // namespace bagnet::detail
