#include "zip_reader.h"

#include <bagnet/error.h>

#include <array>

namespace bagnet::detail {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50, kEndRecord = 0x06054b50,
                   kEnd64Record = 0x06064b50, kEnd64Locator = 0x07064b50;

uint64_t read_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

uint32_t crc32(const uint8_t* data, uint64_t size) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (uint64_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace

bool looks_like_zip(const uint8_t* data, size_t size) {
  return size >= 4 && read_le(data, 4) == kLocalHeader;
}

std::vector<ZipEntry> read_zip(const uint8_t* data, size_t size, const std::string& what) {
  auto corrupt = [&](const std::string& why) -> void {
    fail(ErrorKind::BadInput, what, ": corrupt or truncated zip archive (", why, ")");
  };
  auto need = [&](uint64_t offset, uint64_t length, const char* part) {
    if (offset > size || length > size - offset) corrupt(std::string(part) + " lies beyond the end of the file");
  };

  // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
  if (size < 22) corrupt("file too short");
  size_t end = size - 22;
  const size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  while (read_le(data + end, 4) != kEndRecord) {
    if (end == lowest) corrupt("no end-of-central-directory record; the file is probably truncated");
    --end;
  }
  uint64_t count = read_le(data + end + 10, 2);
  uint64_t directory_size = read_le(data + end + 12, 4);
  uint64_t directory_offset = read_le(data + end + 16, 4);
  if (count == 0xFFFF || directory_offset == 0xFFFFFFFF || directory_size == 0xFFFFFFFF) {
    if (end < 20 || read_le(data + end - 20, 4) != kEnd64Locator) corrupt("missing zip64 locator");
    const uint64_t record = read_le(data + end - 20 + 8, 8);
    need(record, 56, "zip64 end record");
    if (read_le(data + record, 4) != kEnd64Record) corrupt("bad zip64 end record");
    count = read_le(data + record + 32, 8);
    directory_size = read_le(data + record + 40, 8);
    directory_offset = read_le(data + record + 48, 8);
  }
  need(directory_offset, directory_size, "central directory");
  if (count > directory_size / 46) corrupt("entry count does not fit the central directory");

  std::vector<ZipEntry> entries;
  uint64_t at = directory_offset;
  for (uint64_t i = 0; i < count; ++i) {
    need(at, 46, "central directory entry");
    const uint8_t* h = data + at;
    if (read_le(h, 4) != kCentralHeader) corrupt("bad central directory signature");
    const uint64_t flags = read_le(h + 8, 2), method = read_le(h + 10, 2);
    const uint32_t crc = static_cast<uint32_t>(read_le(h + 16, 4));
    uint64_t packed = read_le(h + 20, 4), unpacked = read_le(h + 24, 4);
    const uint64_t name_length = read_le(h + 28, 2), extra_length = read_le(h + 30, 2),
                   comment_length = read_le(h + 32, 2);
    uint64_t local = read_le(h + 42, 4);
    need(at + 46, name_length + extra_length + comment_length, "central directory entry");
    ZipEntry entry;
    entry.name.assign(reinterpret_cast<const char*>(h + 46), name_length);
    // zip64 extra field: the 64-bit values present are those whose 32-bit field is saturated.
    for (uint64_t x = 0; x + 4 <= extra_length;) {
      const uint8_t* field = h + 46 + name_length + x;
      const uint64_t id = read_le(field, 2), length = read_le(field + 2, 2);
      if (x + 4 + length > extra_length) corrupt("bad extra field");
      if (id == 1) {
        uint64_t k = 4;
        auto next = [&](uint64_t& value) {
          if (value != 0xFFFFFFFF) return;
          if (k + 8 > 4 + length) corrupt("short zip64 field");
          value = read_le(field + k, 8);
          k += 8;
        };
        next(unpacked);
        next(packed);
        next(local);
      }
      x += 4 + length;
    }
    if (method != 0 || packed != unpacked)
      fail(ErrorKind::BadInput, what, ": zip entry '", entry.name,
           "' is compressed; torch.save archives store entries uncompressed");
    if (flags & 1) fail(ErrorKind::BadInput, what, ": zip entry '", entry.name, "' is encrypted");
    need(local, 30, "local header");
    if (read_le(data + local, 4) != kLocalHeader) corrupt("bad local header signature");
    const uint64_t start = local + 30 + read_le(data + local + 26, 2) + read_le(data + local + 28, 2);
    need(start, unpacked, "entry data");
    entry.data = data + start;
    entry.size = unpacked;
    if (crc32(entry.data, entry.size) != crc)
      fail(ErrorKind::BadInput, what, ": zip entry '", entry.name, "' fails its CRC-32 check (the file is corrupt)");
    entries.push_back(std::move(entry));
    at += 46 + name_length + extra_length + comment_length;
  }
  return entries;
}

}  // namespace bagnet::detail
