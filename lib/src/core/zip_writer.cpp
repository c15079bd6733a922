#include "zip_writer.h"

#include <bagnet/error.h>

#include "bytes.h"
#include "crc32.h"
#include "zip_format.h"

namespace bagnet::detail {

using namespace zip;

namespace {
constexpr uint16_t kVersion = 20;      // "made by" and "needed to extract": 2.0, plain stored entries
constexpr uint16_t kDosDate = 0x21;    // 1980-01-01 00:00: fixed, so equal inputs give equal files
constexpr uint16_t kPaddingId = 0x4246;  // extra block "FB", as PyTorch's writer uses for padding
constexpr uint64_t kAlignment = 64;
}  // namespace

template <typename T>
void ZipWriter::put(T value) {
  char bytes[sizeof(T)];
  put_le(bytes, value);
  put_bytes(bytes, sizeof(T));
}

void ZipWriter::put_bytes(const void* data, uint64_t size) {
  out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  position_ += size;
}

// The fields local and central headers share, from "version needed" to the name's length.
void ZipWriter::put_entry_fields(const Record& r) {
  put<uint16_t>(kVersion);  // needed to extract
  put<uint16_t>(0);         // flags
  put<uint16_t>(kStored);   // method
  put<uint16_t>(0);         // time
  put<uint16_t>(kDosDate);
  put<uint32_t>(r.crc);
  put<uint32_t>(static_cast<uint32_t>(r.size));  // compressed
  put<uint32_t>(static_cast<uint32_t>(r.size));  // uncompressed
  put<uint16_t>(static_cast<uint16_t>(r.name.size()));
}

void ZipWriter::add(const std::string& name, const void* data, uint64_t size) {
  BAGNET_CHECK(size < kSaturated32, ErrorKind::InvalidArgument, "zip entry '", name,
               "' is larger than 4 GiB, which this writer does not support");
  Record r{name, crc32(data, size), size, position_};
  // Pad the extra field so the data starts on a 64-byte boundary (as torch.save does).
  const uint64_t header = kLocalHeaderSize + name.size();
  const uint64_t extra = (kAlignment - (position_ + header + 4) % kAlignment) % kAlignment + 4;
  put<uint32_t>(kLocalHeader);
  put_entry_fields(r);
  put<uint16_t>(static_cast<uint16_t>(extra));
  put_bytes(name.data(), name.size());
  put<uint16_t>(kPaddingId);
  put<uint16_t>(static_cast<uint16_t>(extra - 4));
  put_bytes(std::string(extra - 4, 'Z').data(), extra - 4);
  put_bytes(data, size);
  records_.push_back(std::move(r));
}

void ZipWriter::finish() {
  const uint64_t directory = position_;
  for (const auto& r : records_) {
    BAGNET_CHECK(r.offset < kSaturated32, ErrorKind::InvalidArgument,
                 "zip archive larger than 4 GiB, which this writer does not support");
    put<uint32_t>(kCentralHeader);
    put<uint16_t>(kVersion);  // made by
    put_entry_fields(r);
    put<uint16_t>(0);  // extra
    put<uint16_t>(0);  // comment
    put<uint16_t>(0);  // disk
    put<uint16_t>(0);  // internal attributes
    put<uint32_t>(0);  // external attributes
    put<uint32_t>(static_cast<uint32_t>(r.offset));
    put_bytes(r.name.data(), r.name.size());
  }
  const uint64_t size = position_ - directory;
  BAGNET_CHECK(position_ < kSaturated32 && records_.size() < kSaturated16, ErrorKind::InvalidArgument,
               "zip archive larger than 4 GiB or with 65535 entries, which this writer does not support");
  put<uint32_t>(kEndRecord);
  put<uint16_t>(0);  // this disk
  put<uint16_t>(0);  // disk with the directory
  put<uint16_t>(static_cast<uint16_t>(records_.size()));  // entries on this disk
  put<uint16_t>(static_cast<uint16_t>(records_.size()));  // entries in all
  put<uint32_t>(static_cast<uint32_t>(size));
  put<uint32_t>(static_cast<uint32_t>(directory));
  put<uint16_t>(0);  // comment length
}

}  // namespace bagnet::detail
