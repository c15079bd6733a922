#include "progress.h"

#include <cstdio>
#include <unistd.h>

namespace bagnet::cli {

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), enabled_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fputc('\n', stderr);
}

void ProgressBar::update(const Progress& p) {
  if (!enabled_ || p.total <= 0) return;
  const double fraction = double(p.done) / double(p.total);
  const int width = 30, filled = static_cast<int>(fraction * width);
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld %s  %.1f s", label_.c_str(), filled,
               "==============================", width - filled, "", (long long)p.done, (long long)p.total,
               p.stage.c_str(), elapsed);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::interrupt() {
  if (drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

ProgressCallback ProgressBar::callback() {
  return [this](const Progress& p) { update(p); };
}

}  // namespace bagnet::cli
