#pragma once
// Reads the uncompressed ("stored") entries of a zip archive held in memory, as written by
// torch.save since PyTorch 1.6. Every offset and length is bounds-checked and CRC-32 verified.
#include <cstdint>
#include <string>
#include <vector>

namespace bagnet::detail {

struct ZipEntry {
  std::string name;
  const uint8_t* data = nullptr;  // points into the archive buffer
  uint64_t size = 0;
};

bool looks_like_zip(const uint8_t* data, size_t size);
// Throws Error(BadInput) naming `what` on anything malformed, compressed or failing its CRC.
std::vector<ZipEntry> read_zip(const uint8_t* data, size_t size, const std::string& what);
// The entry names of the central directory only (any compression; no data or CRC checked): enough
// to tell what kind of archive it is. Throws Error(BadInput) for a malformed directory.
std::vector<std::string> zip_entry_names(const uint8_t* data, size_t size, const std::string& what);
// True when the names are those of a TorchScript archive (torch.jit.save): code, not weights.
bool is_torchscript_archive(const std::vector<std::string>& names);

}  // namespace bagnet::detail
