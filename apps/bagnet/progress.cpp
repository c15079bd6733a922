#include "progress.h"

#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace bagnet::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// "1:02:03" / "2:03" / "7 s".
std::string duration_text(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char text[32];
  if (s >= 3600) std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else if (s >= 60) std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
  else std::snprintf(text, sizeof text, "%ld s", s);
  return text;
}

// Seconds between plain progress lines when stderr is not a terminal (a Slurm or CI log):
// BAGNET_PROGRESS_SECONDS, default 30.
double log_interval() {
  const char* text = std::getenv("BAGNET_PROGRESS_SECONDS");
  const double value = text ? std::atof(text) : 30.0;
  return value > 0 ? value : 30.0;
}

}  // namespace

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      enabled_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      interval_(log_interval()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fputc('\n', stderr);
}

// Rate and time left from the units done so far (the first unit includes start-up, so the rate
// settles after a few).
std::string ProgressBar::rate_text(const Progress& p, double elapsed) const {
  if (p.done <= 0 || elapsed <= 0) return "";
  const double rate = double(p.done) / elapsed;
  char text[64];
  std::snprintf(text, sizeof text, "%.3g/s, %s left", rate, duration_text(double(p.total - p.done) / rate).c_str());
  return text;
}

void ProgressBar::update(const Progress& p) {
  if (p.total <= 0) return;
  const double elapsed = seconds_since(start_);
  if (!enabled_) {
    // No terminal: a plain line now and then, and at the end of a long run.
    const bool finished = p.done >= p.total;
    if (elapsed - last_line_ < interval_ && !(finished && elapsed >= interval_)) return;
    last_line_ = elapsed;
    std::fprintf(stderr, "%s: %lld/%lld (%.0f%%), %s elapsed, %s\n", label_.c_str(), (long long)p.done,
                 (long long)p.total, 100.0 * double(p.done) / double(p.total), duration_text(elapsed).c_str(),
                 rate_text(p, elapsed).c_str());
    std::fflush(stderr);
    return;
  }
  const double fraction = double(p.done) / double(p.total);
  const int width = 30, filled = static_cast<int>(fraction * width);
  std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld  %s  %s \x1b[K", label_.c_str(), filled,
               "==============================", width - filled, "", (long long)p.done, (long long)p.total,
               duration_text(elapsed).c_str(), rate_text(p, elapsed).c_str());
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
