#pragma once
// The parts of the zip format (PKWARE APPNOTE.TXT) that zip_reader and zip_writer share: record
// signatures, fixed record sizes, and the value that says "the real one is in the zip64 record".
#include <cstdint>

namespace bagnet::detail::zip {

constexpr uint32_t kLocalHeader = 0x04034b50;      // "PK\3\4", before each entry's data
constexpr uint32_t kCentralHeader = 0x02014b50;    // "PK\1\2", one per entry in the central directory
constexpr uint32_t kEndRecord = 0x06054b50;        // "PK\5\6", end of central directory
constexpr uint32_t kEnd64Record = 0x06064b50;      // "PK\6\6", zip64 end of central directory
constexpr uint32_t kEnd64Locator = 0x07064b50;     // "PK\6\7", points at the zip64 end record

constexpr uint64_t kLocalHeaderSize = 30;    // without name and extra field
constexpr uint64_t kCentralHeaderSize = 46;  // without name, extra field and comment
constexpr uint64_t kEndRecordSize = 22;      // without comment
constexpr uint64_t kEnd64RecordSize = 56;
constexpr uint64_t kEnd64LocatorSize = 20;
constexpr uint64_t kMaxCommentSize = 0xFFFF;

constexpr uint32_t kSaturated32 = 0xFFFFFFFF;  // a 32-bit field whose value is in the zip64 extra field
constexpr uint16_t kSaturated16 = 0xFFFF;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kStored = 0;  // compression method: none, the only one torch.save uses

}  // namespace bagnet::detail::zip
