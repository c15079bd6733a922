#pragma once
// A progress bar on stderr, drawn only when stderr is a terminal.
#include <bagnet/evidence.h>

#include <chrono>
#include <string>

namespace bagnet::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  void update(const Progress& progress);
  // Ends the bar's line so that a message printed next starts on a fresh line.
  void interrupt();
  ProgressCallback callback();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace bagnet::cli
