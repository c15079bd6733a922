#include <bagnet/atomic_file.h>
#include <bagnet/error.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

namespace bagnet {

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  namespace fs = std::filesystem;
  std::error_code ec;
  BAGNET_CHECK(!fs::is_directory(path, ec), ErrorKind::BadInput, path, ": is a directory, expected a file name");
  std::random_device seed;
  const std::string temp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(seed() % 1000000);
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail(ErrorKind::BadInput, path, ": cannot create (", std::strerror(errno), ")");
    try {
      write(out);
      out.flush();
      if (!out) fail(ErrorKind::Runtime, path, ": write failed (disk full?)");
    } catch (...) {
      out.close();
      std::remove(temp.c_str());
      throw;
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temp.c_str());
    fail(ErrorKind::BadInput, path, ": cannot write (", reason, ")");
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

}  // namespace bagnet
