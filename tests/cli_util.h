#pragma once
// Running the real bagnet binary from a test: exit code, stdout, stderr.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>

namespace bagnet::test {

struct CliResult {
  int code = -1;
  std::string out, err;
};

inline std::string slurp_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs `BAGNET_EXE args` through the shell; `scratch` receives the captured stderr. With `cwd`,
// the command runs in that directory (for relative input paths).
// `prefix` goes before the program (e.g. "timeout -s KILL 1.5 ").
inline CliResult run_bagnet(const std::string& args, const std::filesystem::path& scratch,
                            const std::filesystem::path& cwd = {}, const std::string& prefix = {}) {
  std::filesystem::create_directories(scratch);
  const std::filesystem::path err = std::filesystem::absolute(scratch) / "stderr.txt";
  const std::string command = (cwd.empty() ? std::string() : "cd '" + cwd.string() + "' && ") + prefix + "'" + BAGNET_EXE +
                              "' " + args + " 2>'" + err.string() + "'";
  CliResult r;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) r.out.append(buffer, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = slurp_file(err);
  return r;
}

}  // namespace bagnet::test
