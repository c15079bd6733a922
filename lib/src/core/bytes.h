#pragma once
// Little-endian integers, the byte order of every binary format bagnet-lens reads or writes
// (pickle, zip, .npy). Decoding byte by byte keeps the result independent of the host's byte
// order and of alignment. Callers bounds-check the bytes first.
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace bagnet::detail {

// The sizeof(T) bytes at p as an unsigned little-endian integer.
template <typename T>
T read_le(const uint8_t* p) {
  static_assert(std::is_unsigned_v<T>, "read_le decodes unsigned integers");
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) value = static_cast<T>(value | static_cast<T>(T(p[i]) << (8 * i)));
  return value;
}

// The n <= 8 bytes at p as an unsigned little-endian integer (pickle's LONG1 has any length).
inline uint64_t read_le(const uint8_t* p, size_t n) {
  uint64_t value = 0;
  for (size_t i = 0; i < n && i < 8; ++i) value |= uint64_t(p[i]) << (8 * i);
  return value;
}

// Writes `value` as sizeof(T) little-endian bytes at p.
template <typename T>
void put_le(char* p, T value) {
  static_assert(std::is_unsigned_v<T>, "put_le encodes unsigned integers");
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}

// Appends `value` as sizeof(T) little-endian bytes.
template <typename T>
void append_le(std::string& out, T value) {
  char bytes[sizeof(T)];
  put_le(bytes, value);
  out.append(bytes, sizeof(T));
}

}  // namespace bagnet::detail
