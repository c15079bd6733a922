#include <bagnet/atomic_file.h>
#include <bagnet/error.h>

#include "confined_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <fcntl.h>
#include <unistd.h>

namespace bagnet {

namespace {

// Forces `path` (a file or a folder) to the disk. A rename is only durable once the new file's
// data and the folder entry are both on the disk: without this a power cut can leave an empty file
// under the final name on common file systems (ext4 with delayed allocation, XFS).
bool sync_to_disk(const std::string& path, bool folder) {
  const int fd = ::open(path.c_str(), (folder ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0 || errno == EINVAL;  // EINVAL: a file system without fsync (e.g. some FUSE)
  ::close(fd);
  return ok;
}

}  // namespace

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  namespace fs = std::filesystem;
  std::error_code ec;
  BAGNET_CHECK(!fs::is_directory(path, ec), ErrorKind::BadInput, path, ": is a directory, expected a file name");
  std::random_device seed;
  const std::string temp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(seed() % 1000000);
  {
    // O_EXCL | O_NOFOLLOW: never write through a link or into a file someone else placed there.
    detail::Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd.valid()) fail(ErrorKind::Output, path, ": cannot create (", std::strerror(errno), ")");
    try {
      detail::FdStreamBuf buffer(fd.get(), path);
      std::ostream out(&buffer);
      out.exceptions(std::ios::badbit);  // a failed write (Error(Output)) leaves the stream at once
      try {
        write(out);
      } catch (const std::ios::failure&) {
      }
      buffer.flush_or_throw();
      if (!out) fail(ErrorKind::Output, path, ": write failed");
    } catch (...) {
      std::remove(temp.c_str());
      throw;
    }
    if (::fsync(fd.get()) != 0 && errno != EINVAL) {  // EINVAL: a file system without fsync (e.g. some FUSE)
      const std::string reason = std::strerror(errno);
      std::remove(temp.c_str());
      fail(ErrorKind::Output, path, ": cannot flush to disk (", reason, ")");
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temp.c_str());
    fail(ErrorKind::Output, path, ": cannot write (", reason, ")");
  }
  const fs::path folder = fs::path(path).parent_path();
  sync_to_disk(folder.empty() ? "." : folder.string(), true);  // best effort: the file itself is complete
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

}  // namespace bagnet
