#pragma once
// Shared by the libFuzzer targets: readers that take file paths get the input through a scratch
// file, and a bagnet::Error is the expected answer to bad bytes. Anything else escaping a reader
// (another exception type, a crash, a sanitizer report, a timeout, memory beyond -rss_limit_mb) is
// a finding.
#include <bagnet/error.h>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace bagnet::fuzz {

// A folder of this process's own under $TMPDIR (or /tmp), made once.
inline const std::filesystem::path& scratch_folder() {
  static const std::filesystem::path folder = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::filesystem::path p = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") /
                              ("bagnet-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p;
  }();
  return folder;
}

// Writes the input to scratch_folder()/name and returns the path.
inline std::string write_scratch(const std::string& name, const uint8_t* data, size_t size) {
  const std::filesystem::path path = scratch_folder() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) std::abort();  // the harness itself failed, not the code under test
  return path.string();
}

// Runs `read`; a bagnet::Error is a correct answer to bad input.
template <typename Read>
int expect_clean(Read&& read) {
  try {
    read();
  } catch (const bagnet::Error&) {
  }
  return 0;
}

}  // namespace bagnet::fuzz
