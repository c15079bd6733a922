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
  void finish();  // writes the central directory (zip64 when needed)

 private:
  struct Record {
    std::string name;
    uint32_t crc = 0;
    uint64_t size = 0, offset = 0;
  };
  void put(uint64_t value, int bytes);
  std::ostream& out_;
  uint64_t position_ = 0;
  std::vector<Record> records_;
};

uint32_t crc32_of(const void* data, uint64_t size);

}  // namespace bagnet::detail
