#pragma once
// The one exception type of bagnet-lens. The library never prints and never exits; every failure
// is an Error whose message is one line naming the problem (expected vs. actual where it applies).
#include <sstream>
#include <stdexcept>
#include <string>

namespace bagnet {

enum class ErrorKind {
  InvalidArgument,  // a caller/user choice is wrong (unknown class, bad option value)
  BadInput,         // a file or tensor handed to us is unreadable, corrupt or of the wrong shape
  Runtime,          // the computation itself failed (device unavailable, out of memory, ...)
  Output,           // an output could not be written (disk full, quota, read-only or vanished
                    // folder): a run stops at the first such failure instead of trying every sample
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

template <typename... Parts>
[[noreturn]] void fail(ErrorKind kind, const Parts&... parts) {
  throw Error(kind, detail::concat(parts...));
}

}  // namespace bagnet

// BAGNET_CHECK(cond, kind, message parts...): throws bagnet::Error(kind, message) when cond is false.
#define BAGNET_CHECK(cond, kind, ...)            \
  do {                                           \
    if (!(cond)) ::bagnet::fail((kind), __VA_ARGS__); \
  } while (false)
