#pragma once
// Progress on stderr: a bar with rate and time left on a terminal; otherwise (Slurm, CI logs) a
// plain line every BAGNET_PROGRESS_SECONDS (default 30) with done/total, rate and time left.
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
  double interval_;           // seconds between plain lines
  double last_line_ = 0;      // when the last plain line was printed (seconds since start)
  std::string rate_text(const Progress& p, double elapsed) const;
};

}  // namespace bagnet::cli
