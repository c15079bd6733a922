#pragma once
// SHA-256 (FIPS 180-4), used to fingerprint checkpoints and check downloaded weights.
#include <cstddef>
#include <cstdint>
#include <string>

namespace bagnet {
std::string sha256_hex(const uint8_t* data, size_t size);  // lowercase hex, 64 characters
std::string sha256_file(const std::string& path);           // throws Error(BadInput) if unreadable
}  // namespace bagnet
