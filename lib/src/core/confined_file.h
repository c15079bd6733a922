#pragma once
// Files of a folder that may come from a stranger, opened without trusting it: a name is opened
// relative to the folder's descriptor, one component at a time, never following a link, and
// without blocking (a FIFO), then checked to be a regular file of bounded size before anything is
// read. Writes go through write_all, which turns every failure (disk full, quota, read-only folder)
// into Error(Output) naming the file, and where tests inject failures (set_write_failure).
#include <cstddef>
#include <cstdint>
#include <streambuf>
#include <string>
#include <vector>

#include <sys/stat.h>

namespace bagnet::detail {

// An open file descriptor, closed by the destructor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// The folder `path` itself (a link to a folder is followed: the user named it). Throws
// Error(BadInput) "<path>: not a folder" otherwise.
Fd open_folder(const std::string& path);

// `relative` ("reports.jsonl", "maps/000017.npz") inside the folder `dir`, each component opened
// without following a link; the last one without blocking and checked with fstat to be a regular
// file. Returns an invalid Fd when a component does not exist (and `missing_ok`); throws
// Error(BadInput) naming `shown` for a link, a FIFO, a device, a folder, or a component that is not
// a folder. `stat_out` receives the file's fstat.
Fd open_regular(int dir, const std::string& relative, const std::string& shown, bool missing_ok,
                struct stat* stat_out = nullptr);

// The sub-folder `name` of `dir` (one component), never through a link; created when missing and
// `create`. Returns an invalid Fd when missing and not created.
Fd open_subfolder(int dir, const std::string& name, const std::string& shown, bool create);

// The whole file, when it has at most `max_bytes`: Error(BadInput) naming `shown` otherwise.
std::vector<uint8_t> read_all(int fd, uint64_t max_bytes, const std::string& shown);

// Writes all of [data, data + size) or throws Error(Output) "<shown>: write failed (<reason>)".
void write_all(int fd, const void* data, size_t size, const std::string& shown);

// Tests only: the write that would take the total bytes written through write_all (and the stream
// buffers below) past `after_bytes` fails with `error` (e.g. ENOSPC), as would every later one;
// a negative `after_bytes` turns injection off.
void set_write_failure(int64_t after_bytes, int error);

// A stream buffer over a descriptor (read, or write through write_all), seekable when the file is.
// Reading and writing are not mixed on one buffer.
class FdStreamBuf : public std::streambuf {
 public:
  FdStreamBuf(int fd, std::string shown) : fd_(fd), shown_(std::move(shown)), buffer_(1 << 16) {}
  ~FdStreamBuf() override;
  // Writes what is buffered; throws Error(Output) on failure (sync() only reports it).
  void flush_or_throw();

 protected:
  int_type underflow() override;
  int_type overflow(int_type c) override;
  int sync() override;
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode which) override;
  pos_type seekpos(pos_type pos, std::ios_base::openmode which) override;

 private:
  int fd_;
  std::string shown_;
  std::vector<char> buffer_;
  bool writing_ = false;
};

}  // namespace bagnet::detail
