#include "zip_reader.h"

#include <bagnet/error.h>

#include "bytes.h"
#include "crc32.h"
#include "zip_format.h"

namespace bagnet::detail {
namespace {

using namespace zip;

struct Directory {
  uint64_t count = 0, size = 0, offset = 0;
};

// One archive in memory with the checks every read goes through.
class Archive {
 public:
  Archive(const uint8_t* data, size_t size, const std::string& what) : data_(data), size_(size), what_(what) {}

  [[noreturn]] void corrupt(const std::string& why) const {
    fail(ErrorKind::BadInput, what_, ": corrupt or truncated zip archive (", why, ")");
  }
  void need(uint64_t offset, uint64_t length, const char* part) const {
    if (offset > size_ || length > size_ - offset) corrupt(std::string(part) + " lies beyond the end of the file");
  }

  // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
  Directory directory() const {
    if (size_ < kEndRecordSize) corrupt("file too short");
    size_t end = size_ - kEndRecordSize;
    const size_t lowest = size_ > kEndRecordSize + kMaxCommentSize ? size_ - kEndRecordSize - kMaxCommentSize : 0;
    while (read_le<uint32_t>(data_ + end) != kEndRecord) {
      if (end == lowest) corrupt("no end-of-central-directory record; the file is probably truncated");
      --end;
    }
    Directory d{read_le<uint16_t>(data_ + end + 10), read_le<uint32_t>(data_ + end + 12),
                read_le<uint32_t>(data_ + end + 16)};
    if (d.count == kSaturated16 || d.offset == kSaturated32 || d.size == kSaturated32) {
      if (end < kEnd64LocatorSize || read_le<uint32_t>(data_ + end - kEnd64LocatorSize) != kEnd64Locator)
        corrupt("missing zip64 locator");
      const uint64_t record = read_le<uint64_t>(data_ + end - kEnd64LocatorSize + 8);
      need(record, kEnd64RecordSize, "zip64 end record");
      if (read_le<uint32_t>(data_ + record) != kEnd64Record) corrupt("bad zip64 end record");
      d = {read_le<uint64_t>(data_ + record + 32), read_le<uint64_t>(data_ + record + 40),
           read_le<uint64_t>(data_ + record + 48)};
    }
    need(d.offset, d.size, "central directory");
    if (d.count > d.size / kCentralHeaderSize) corrupt("entry count does not fit the central directory");
    return d;
  }

  // Reads the central directory entry at `at` (advanced past it) and locates and checks its data.
  ZipEntry entry(uint64_t& at) const {
    need(at, kCentralHeaderSize, "central directory entry");
    const uint8_t* h = data_ + at;
    if (read_le<uint32_t>(h) != kCentralHeader) corrupt("bad central directory signature");
    const uint64_t flags = read_le<uint16_t>(h + 8), method = read_le<uint16_t>(h + 10);
    const uint32_t crc = read_le<uint32_t>(h + 16);
    uint64_t packed = read_le<uint32_t>(h + 20), unpacked = read_le<uint32_t>(h + 24);
    const uint64_t name_length = read_le<uint16_t>(h + 28), extra_length = read_le<uint16_t>(h + 30),
                   comment_length = read_le<uint16_t>(h + 32);
    uint64_t local = read_le<uint32_t>(h + 42);
    need(at + kCentralHeaderSize, name_length + extra_length + comment_length, "central directory entry");
    ZipEntry entry;
    entry.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_length);
    zip64_extra(h + kCentralHeaderSize + name_length, extra_length, unpacked, packed, local);
    if (method != kStored || packed != unpacked)
      fail(ErrorKind::BadInput, what_, ": zip entry '", entry.name,
           "' is compressed; torch.save archives store entries uncompressed");
    if (flags & 1) fail(ErrorKind::BadInput, what_, ": zip entry '", entry.name, "' is encrypted");
    need(local, kLocalHeaderSize, "local header");
    if (read_le<uint32_t>(data_ + local) != kLocalHeader) corrupt("bad local header signature");
    const uint64_t start =
        local + kLocalHeaderSize + read_le<uint16_t>(data_ + local + 26) + read_le<uint16_t>(data_ + local + 28);
    need(start, unpacked, "entry data");
    entry.data = data_ + start;
    entry.size = unpacked;
    if (crc32(entry.data, entry.size) != crc)
      fail(ErrorKind::BadInput, what_, ": zip entry '", entry.name, "' fails its CRC-32 check (the file is corrupt)");
    at += kCentralHeaderSize + name_length + extra_length + comment_length;
    return entry;
  }

  // The name of the central directory entry at `at` (advanced past it), nothing else checked.
  std::string name(uint64_t& at) const {
    need(at, kCentralHeaderSize, "central directory entry");
    const uint8_t* h = data_ + at;
    if (read_le<uint32_t>(h) != kCentralHeader) corrupt("bad central directory signature");
    const uint64_t name_length = read_le<uint16_t>(h + 28), extra_length = read_le<uint16_t>(h + 30),
                   comment_length = read_le<uint16_t>(h + 32);
    need(at + kCentralHeaderSize, name_length + extra_length + comment_length, "central directory entry");
    at += kCentralHeaderSize + name_length + extra_length + comment_length;
    return std::string(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_length);
  }

 private:
  // zip64 extra field: the 64-bit values present are those whose 32-bit field is saturated.
  void zip64_extra(const uint8_t* extra, uint64_t extra_length, uint64_t& unpacked, uint64_t& packed,
                   uint64_t& local) const {
    for (uint64_t x = 0; x + 4 <= extra_length;) {
      const uint8_t* field = extra + x;
      const uint64_t id = read_le<uint16_t>(field), length = read_le<uint16_t>(field + 2);
      if (x + 4 + length > extra_length) corrupt("bad extra field");
      if (id == kZip64ExtraId) {
        uint64_t k = 4;
        auto next = [&](uint64_t& value) {
          if (value != kSaturated32) return;
          if (k + 8 > 4 + length) corrupt("short zip64 field");
          value = read_le<uint64_t>(field + k);
          k += 8;
        };
        next(unpacked);
        next(packed);
        next(local);
      }
      x += 4 + length;
    }
  }

  const uint8_t* data_;
  size_t size_;
  const std::string& what_;
};

}  // namespace

bool looks_like_zip(const uint8_t* data, size_t size) {
  return size >= 4 && read_le<uint32_t>(data) == zip::kLocalHeader;
}

std::vector<ZipEntry> read_zip(const uint8_t* data, size_t size, const std::string& what) {
  const Archive archive(data, size, what);
  const Directory directory = archive.directory();
  std::vector<ZipEntry> entries;
  uint64_t at = directory.offset;
  for (uint64_t i = 0; i < directory.count; ++i) entries.push_back(archive.entry(at));
  return entries;
}

std::vector<std::string> zip_entry_names(const uint8_t* data, size_t size, const std::string& what) {
  const Archive archive(data, size, what);
  const Directory directory = archive.directory();
  std::vector<std::string> names;
  uint64_t at = directory.offset;
  for (uint64_t i = 0; i < directory.count; ++i) names.push_back(archive.name(at));
  return names;
}

bool is_torchscript_archive(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && (name.compare(slash + 1, 5, "code/") == 0 || name.substr(slash + 1) == "constants.pkl"))
      return true;
  }
  return false;
}

}  // namespace bagnet::detail
