#include "idx.h"

#include <bagnet/error.h>

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>

namespace bagnet::detail {

std::vector<uint8_t> maybe_gunzip(std::vector<uint8_t> bytes, const std::string& what, const GunzipLimit& limit) {
  if (bytes.size() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b) return bytes;
  std::vector<uint8_t> out;
  uint64_t most = std::numeric_limits<uint64_t>::max();  // what the decoded header allows, once known
  const auto check = [&] {
    if (limit && most == std::numeric_limits<uint64_t>::max()) {
      if (const std::optional<uint64_t> promised = limit(out)) most = *promised;
    }
    BAGNET_CHECK(out.size() <= most, ErrorKind::BadInput, what, ": the gzip stream inflates to more than the ", most,
                 " bytes its header promises (stopped there)");
  };
  size_t consumed = 0;
  // gzip allows several members back to back; each is inflated in turn.
  while (consumed < bytes.size()) {
    z_stream z{};
    BAGNET_CHECK(inflateInit2(&z, 16 + MAX_WBITS) == Z_OK, ErrorKind::Runtime, what, ": cannot start gzip decoder");
    z.next_in = bytes.data() + consumed;
    z.avail_in = static_cast<uInt>(bytes.size() - consumed);
    int status = Z_OK;
    uint8_t chunk[1 << 16];
    while (status == Z_OK) {
      z.next_out = chunk;
      z.avail_out = sizeof chunk;
      status = inflate(&z, Z_NO_FLUSH);
      out.insert(out.end(), chunk, chunk + (sizeof chunk - z.avail_out));
      try {
        check();  // never more than the promised bytes (plus one chunk) in memory
      } catch (...) {
        inflateEnd(&z);
        throw;
      }
      if (status == Z_BUF_ERROR && z.avail_in == 0) break;
    }
    const std::string message = z.msg ? z.msg : "";
    consumed = bytes.size() - z.avail_in;
    inflateEnd(&z);
    BAGNET_CHECK(status != Z_BUF_ERROR && status != Z_OK, ErrorKind::BadInput, what,
                 ": truncated gzip stream (the file ends before the compressed data does)");
    BAGNET_CHECK(status == Z_STREAM_END, ErrorKind::BadInput, what, ": corrupt gzip data (",
                 message.empty() ? "zlib error " + std::to_string(status) : message, ")");
    // Trailing zero padding after the last member is tolerated, as gzip(1) does.
    if (consumed < bytes.size() && bytes[consumed] != 0x1f) {
      bool zeros = true;
      for (size_t i = consumed; i < bytes.size(); ++i) zeros = zeros && bytes[i] == 0;
      BAGNET_CHECK(zeros, ErrorKind::BadInput, what, ": unexpected data after the gzip stream at byte ", consumed);
      break;
    }
  }
  return out;
}

IdxArray parse_idx(const std::vector<uint8_t>& bytes, int expected_dims, const std::string& what) {
  BAGNET_CHECK(bytes.size() >= 4, ErrorKind::BadInput, what, ": too short for an IDX file (", bytes.size(),
               " bytes)");
  BAGNET_CHECK(bytes[0] == 0 && bytes[1] == 0, ErrorKind::BadInput, what,
               ": not an IDX file (magic must start with two zero bytes)");
  BAGNET_CHECK(bytes[2] == 0x08, ErrorKind::BadInput, what, ": IDX data type 0x", std::hex, int(bytes[2]),
               std::dec, " is not supported (expected 0x08, unsigned bytes)");
  BAGNET_CHECK(bytes[3] == expected_dims, ErrorKind::BadInput, what, ": IDX file has ", int(bytes[3]),
               " dimensions, expected ", expected_dims, expected_dims == 1 ? " (labels)" : " (images)");
  const size_t header = 4 + 4 * size_t(expected_dims);
  BAGNET_CHECK(bytes.size() >= header, ErrorKind::BadInput, what, ": truncated IDX header");
  IdxArray array;
  uint64_t total = 1;
  for (int d = 0; d < expected_dims; ++d) {
    const uint8_t* p = bytes.data() + 4 + 4 * d;
    const uint64_t n = (uint64_t(p[0]) << 24) | (uint64_t(p[1]) << 16) | (uint64_t(p[2]) << 8) | uint64_t(p[3]);
    array.dims.push_back(static_cast<int64_t>(n));
    total *= n;
    BAGNET_CHECK(total <= (uint64_t(1) << 40), ErrorKind::BadInput, what, ": implausible IDX sizes");
  }
  const uint64_t available = bytes.size() - header;
  BAGNET_CHECK(available >= total, ErrorKind::BadInput, what, ": truncated IDX data (the header promises ", total,
               " bytes, the file holds ", available, ")");
  BAGNET_CHECK(available == total, ErrorKind::BadInput, what, ": ", available - total,
               " unexpected bytes after the IDX data (the header promises ", total, ")");
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

std::optional<uint64_t> idx_promised_bytes(const std::vector<uint8_t>& head, int expected_dims, const std::string& what) {
  const size_t header = 4 + 4 * size_t(expected_dims);
  if (head.size() < header) return std::nullopt;
  // The header alone, checked as parse_idx checks it: a bomb with a bad header stops here too.
  const std::vector<uint8_t> alone(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(header));
  try {
    parse_idx(alone, expected_dims, what);
  } catch (const Error& e) {
    if (std::string(e.what()).find("truncated IDX data") == std::string::npos) throw;
  }
  uint64_t total = 1;
  for (int d = 0; d < expected_dims; ++d) {
    const uint8_t* p = head.data() + 4 + 4 * d;
    total *= (uint64_t(p[0]) << 24) | (uint64_t(p[1]) << 16) | (uint64_t(p[2]) << 8) | uint64_t(p[3]);
  }
  return header + total;
}

IdxArray read_idx(const std::string& path, int expected_dims) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::BadInput, path, ": cannot open (", std::strerror(errno), ")");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const GunzipLimit limit = [&](const std::vector<uint8_t>& head) { return idx_promised_bytes(head, expected_dims, path); };
  return parse_idx(maybe_gunzip(std::move(bytes), path, limit), expected_dims, path);
}

}  // namespace bagnet::detail
