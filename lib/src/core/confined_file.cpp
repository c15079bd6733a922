#include "confined_file.h"

#include <bagnet/error.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace bagnet::detail {

namespace {

std::atomic<int64_t> g_fail_after{-1};
std::atomic<int64_t> g_written{0};
std::atomic<int> g_fail_errno{0};

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a link";
  return "not a regular file";
}

// Why openat(dir, name) failed with `error` on a component opened with O_NOFOLLOW: a link (ELOOP,
// or ENOTDIR when a folder was asked for), or a component that is not a folder.
std::string open_failure(int dir, const std::string& name, int error) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
    return "is a link (only files inside the folder are read)";
  if (error == ENOTDIR) return "is not a folder";
  return std::string("cannot open (") + std::strerror(error) + ")";
}

}  // namespace

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd open_folder(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) fail(ErrorKind::BadInput, path, ": not a folder (", std::strerror(errno), ")");
  return fd;
}

Fd open_subfolder(int dir, const std::string& name, const std::string& shown, bool create) {
  BAGNET_CHECK(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..",
               ErrorKind::InvalidArgument, shown, ": not a plain name");
  if (create && ::mkdirat(dir, name.c_str(), 0755) != 0 && errno != EEXIST)
    fail(ErrorKind::Output, shown, ": cannot create (", std::strerror(errno), ")");
  Fd fd(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.valid()) return fd;
  if (errno == ENOENT) return Fd();
  fail(ErrorKind::BadInput, shown, ": ", open_failure(dir, name, errno));
}

Fd open_regular(int dir, const std::string& relative, const std::string& shown, bool missing_ok, struct stat* stat_out) {
  Fd holder;
  int at = dir;
  size_t start = 0;
  for (size_t slash = relative.find('/'); slash != std::string::npos; slash = relative.find('/', start)) {
    Fd sub = open_subfolder(at, relative.substr(start, slash - start), shown, false);
    if (!sub.valid()) {
      if (missing_ok) return Fd();
      fail(ErrorKind::BadInput, shown, ": missing");
    }
    holder = std::move(sub);
    at = holder.get();
    start = slash + 1;
  }
  const std::string name = relative.substr(start);
  BAGNET_CHECK(!name.empty() && name != "." && name != "..", ErrorKind::InvalidArgument, shown, ": not a file name");
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  Fd fd(::openat(at, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    if (errno == ENOENT && missing_ok) return Fd();
    if (errno == ENOENT) fail(ErrorKind::BadInput, shown, ": missing");
    fail(ErrorKind::BadInput, shown, ": ", open_failure(at, name, errno));
  }
  struct stat st {};
  BAGNET_CHECK(::fstat(fd.get(), &st) == 0, ErrorKind::BadInput, shown, ": cannot stat (", std::strerror(errno), ")");
  BAGNET_CHECK(S_ISREG(st.st_mode), ErrorKind::BadInput, shown, ": is ", kind_of(st.st_mode),
               ", expected a regular file");
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  if (stat_out) *stat_out = st;
  return fd;
}

std::vector<uint8_t> read_all(int fd, uint64_t max_bytes, const std::string& shown) {
  struct stat st {};
  BAGNET_CHECK(::fstat(fd, &st) == 0, ErrorKind::BadInput, shown, ": cannot stat (", std::strerror(errno), ")");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  BAGNET_CHECK(size <= max_bytes, ErrorKind::BadInput, shown, ": ", size, " bytes, at most ", max_bytes,
               " expected here");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    BAGNET_CHECK(n > 0, ErrorKind::BadInput, shown, n == 0 ? ": changed while being read" : ": read error (",
                 n == 0 ? "" : std::strerror(errno), n == 0 ? "" : ")");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

void set_write_failure(int64_t after_bytes, int error) {
  g_written = 0;
  g_fail_errno = error;
  g_fail_after = after_bytes;
}

void write_all(int fd, const void* data, size_t size, const std::string& shown) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    size_t chunk = size;
    const int64_t limit = g_fail_after.load();
    if (limit >= 0) {
      const int64_t room = limit - g_written.load();
      if (room <= 0) fail(ErrorKind::Output, shown, ": write failed (", std::strerror(g_fail_errno.load()), ")");
      chunk = std::min<size_t>(chunk, static_cast<size_t>(room));
    }
    const ssize_t n = ::write(fd, p, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(ErrorKind::Output, shown, ": write failed (", n < 0 ? std::strerror(errno) : "no progress", ")");
    g_written += n;
    p += n;
    size -= static_cast<size_t>(n);
  }
}

FdStreamBuf::~FdStreamBuf() {
  if (writing_ && pptr() > pbase()) {
    try {
      flush_or_throw();
    } catch (const Error&) {  // a destructor cannot report it; writers call flush_or_throw first
    }
  }
}

void FdStreamBuf::flush_or_throw() {
  if (!writing_) return;
  const size_t n = static_cast<size_t>(pptr() - pbase());
  setp(buffer_.data(), buffer_.data() + buffer_.size());
  write_all(fd_, buffer_.data(), n, shown_);
}

FdStreamBuf::int_type FdStreamBuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  ssize_t n;
  do n = ::read(fd_, buffer_.data(), buffer_.size());
  while (n < 0 && errno == EINTR);
  if (n <= 0) return traits_type::eof();  // a read error shows as the stream's bad end of file
  setg(buffer_.data(), buffer_.data(), buffer_.data() + n);
  return traits_type::to_int_type(*gptr());
}

FdStreamBuf::int_type FdStreamBuf::overflow(int_type c) {
  if (!writing_) {
    writing_ = true;
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  } else {
    flush_or_throw();
  }
  if (!traits_type::eq_int_type(c, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(c);
    pbump(1);
  }
  return traits_type::not_eof(c);
}

int FdStreamBuf::sync() {
  try {
    flush_or_throw();
    return 0;
  } catch (const Error&) {
    return -1;
  }
}

FdStreamBuf::pos_type FdStreamBuf::seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) {
  if (writing_) return pos_type(off_type(-1));
  // The descriptor's offset is at the end of what was buffered; a relative seek counts from the
  // reader's position.
  if (dir == std::ios_base::cur) off -= static_cast<off_type>(egptr() - gptr());
  const off_t at = ::lseek(fd_, static_cast<off_t>(off),
                           dir == std::ios_base::beg ? SEEK_SET : dir == std::ios_base::cur ? SEEK_CUR : SEEK_END);
  if (at < 0) return pos_type(off_type(-1));
  setg(buffer_.data(), buffer_.data(), buffer_.data());
  return pos_type(static_cast<off_type>(at));
}

FdStreamBuf::pos_type FdStreamBuf::seekpos(pos_type pos, std::ios_base::openmode which) {
  return seekoff(off_type(pos), std::ios_base::beg, which);
}

}  // namespace bagnet::detail
