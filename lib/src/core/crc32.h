#pragma once
#include <cstdint>

namespace bagnet::detail {
// CRC-32 as zip uses it (ISO-HDLC: reflected polynomial 0xEDB88320, initial and final XOR ~0).
uint32_t crc32(const void* data, uint64_t size);
}  // namespace bagnet::detail
