#include "file_bytes.h"

#include <bagnet/error.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace bagnet::detail {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(ErrorKind::BadInput, path, ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::BadInput, path, ": cannot open (", std::strerror(errno), ")");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) fail(ErrorKind::BadInput, path, ": cannot determine the file size");
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    fail(ErrorKind::BadInput, path, ": read error");
  return bytes;
}

}  // namespace bagnet::detail
