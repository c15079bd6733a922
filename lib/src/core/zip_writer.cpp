#include "zip_writer.h"

#include <bagnet/error.h>

#include <array>

namespace bagnet::detail {

uint32_t crc32_of(const void* data, uint64_t size) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (uint64_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void ZipWriter::put(uint64_t value, int bytes) {
  char buffer[8];
  for (int i = 0; i < bytes; ++i) buffer[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
  out_.write(buffer, bytes);
  position_ += static_cast<uint64_t>(bytes);
}

void ZipWriter::add(const std::string& name, const void* data, uint64_t size) {
  BAGNET_CHECK(size < 0xFFFFFFFFull, ErrorKind::InvalidArgument, "zip entry '", name,
               "' is larger than 4 GiB, which this writer does not support");
  Record r{name, crc32_of(data, size), size, position_};
  // Pad the extra field so the data starts on a 64-byte boundary (as torch.save does).
  const uint64_t header = 30 + name.size();
  uint64_t extra = (64 - (position_ + header + 4) % 64) % 64 + 4;
  put(0x04034b50, 4);
  put(20, 2);          // version needed
  put(0, 2);           // flags
  put(0, 2);           // method: stored
  put(0, 2);           // time
  put(0x21, 2);        // date (1980-01-01)
  put(r.crc, 4);
  put(size, 4);
  put(size, 4);
  put(name.size(), 2);
  put(extra, 2);
  out_.write(name.data(), static_cast<std::streamsize>(name.size()));
  position_ += name.size();
  put(0x4246, 2);      // extra block id "FB", as PyTorch's writer uses for padding
  put(extra - 4, 2);
  const std::string padding(extra - 4, 'Z');
  out_.write(padding.data(), static_cast<std::streamsize>(padding.size()));
  position_ += padding.size();
  out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  position_ += size;
  records_.push_back(std::move(r));
}

void ZipWriter::finish() {
  const uint64_t directory = position_;
  for (const auto& r : records_) {
    BAGNET_CHECK(r.offset < 0xFFFFFFFFull, ErrorKind::InvalidArgument,
                 "zip archive larger than 4 GiB, which this writer does not support");
    put(0x02014b50, 4);
    put(20, 2);  // made by
    put(20, 2);  // needed
    put(0, 2);
    put(0, 2);
    put(0, 2);
    put(0x21, 2);
    put(r.crc, 4);
    put(r.size, 4);
    put(r.size, 4);
    put(r.name.size(), 2);
    put(0, 2);  // extra
    put(0, 2);  // comment
    put(0, 2);  // disk
    put(0, 2);  // internal attributes
    put(0, 4);  // external attributes
    put(r.offset, 4);
    out_.write(r.name.data(), static_cast<std::streamsize>(r.name.size()));
    position_ += r.name.size();
  }
  const uint64_t size = position_ - directory;
  put(0x06054b50, 4);
  put(0, 2);
  put(0, 2);
  put(records_.size(), 2);
  put(records_.size(), 2);
  put(size, 4);
  put(directory, 4);
  put(0, 2);
}

}  // namespace bagnet::detail
