#pragma once
// The IDX format of MNIST-style datasets: a 4-byte magic (0, 0, type, dimension count), big-endian
// uint32 sizes, then the raw data. Only unsigned-byte data (type 0x08) is read. Files may be gzipped.
#include <cstdint>
#include <string>
#include <vector>

namespace bagnet::detail {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // product(dims) bytes
};

// Gunzips `bytes` when they start with the gzip magic (several members are concatenated), else
// returns them unchanged. Throws Error(BadInput) naming `what` for corrupt or truncated streams.
std::vector<uint8_t> maybe_gunzip(std::vector<uint8_t> bytes, const std::string& what);

// Parses an IDX file of unsigned bytes with `expected_dims` dimensions. Throws Error(BadInput)
// naming `what` for a wrong magic, type, dimension count, or a size that does not match the data.
IdxArray parse_idx(const std::vector<uint8_t>& bytes, int expected_dims, const std::string& what);
IdxArray read_idx(const std::string& path, int expected_dims);

}  // namespace bagnet::detail
