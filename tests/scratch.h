#pragma once
// Scratch space for tests under the system's temporary folder, one folder per test area
// (bagnet-test-<area>), so that parallel test programs never share files.
#include <filesystem>
#include <string>

namespace bagnet::test {

// bagnet-test-<area>/, created if missing; what earlier runs left there stays.
inline std::filesystem::path scratch_folder(const std::string& area) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("bagnet-test-" + area);
  std::filesystem::create_directories(dir);
  return dir;
}

// bagnet-test-<area>/<name>/, emptied: nothing of an earlier run is left in it.
inline std::filesystem::path fresh_scratch_folder(const std::string& area, const std::string& name) {
  const std::filesystem::path dir = scratch_folder(area) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// bagnet-test-<area>/<name>, with nothing there yet (an earlier run's file or folder removed).
inline std::filesystem::path scratch_path(const std::string& area, const std::string& name) {
  const std::filesystem::path path = scratch_folder(area) / name;
  std::filesystem::remove_all(path);
  return path;
}

}  // namespace bagnet::test
