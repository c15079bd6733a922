#pragma once
// The IDX format of MNIST-style datasets: a 4-byte magic (0, 0, type, dimension count), big-endian
// uint32 sizes, then the raw data. Only unsigned-byte data (type 0x08) is read. Files may be gzipped.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bagnet::detail {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // product(dims) bytes
};

// Given the bytes inflated so far, the size the data's own header promises once it can tell
// (nothing before); may throw for a header that is wrong already.
using GunzipLimit = std::function<std::optional<uint64_t>(const std::vector<uint8_t>&)>;

// Gunzips `bytes` when they start with the gzip magic (several members are concatenated), else
// returns them unchanged. Inflates chunk by chunk and, with `limit`, stops as soon as the output
// exceeds what the header promises (a gzip bomb never inflates further). Throws Error(BadInput)
// naming `what` for corrupt, truncated or overlong streams.
std::vector<uint8_t> maybe_gunzip(std::vector<uint8_t> bytes, const std::string& what, const GunzipLimit& limit = {});

// The bytes an IDX file of `expected_dims` dimensions with this start promises (header + data),
// once its header is complete; Error(BadInput) for a header parse_idx refuses.
std::optional<uint64_t> idx_promised_bytes(const std::vector<uint8_t>& head, int expected_dims, const std::string& what);

// Parses an IDX file of unsigned bytes with `expected_dims` dimensions. Throws Error(BadInput)
// naming `what` for a wrong magic, type, dimension count, or a size that does not match the data.
IdxArray parse_idx(const std::vector<uint8_t>& bytes, int expected_dims, const std::string& what);
IdxArray read_idx(const std::string& path, int expected_dims);

}  // namespace bagnet::detail
