#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bagnet::detail {
// Reads a whole file; throws Error(BadInput) naming the path when it cannot be read.
std::vector<uint8_t> read_file_bytes(const std::string& path);
}  // namespace bagnet::detail
