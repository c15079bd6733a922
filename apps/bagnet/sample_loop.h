#pragma once
// The per-sample loop every command shares (predict, report, patches, heatmap): one bad sample is
// reported on one line and skipped instead of ending the run; progress on stderr; one exit code.
#include "progress.h"

#include <cstdint>
#include <functional>
#include <string>

namespace bagnet::cli {

class SampleLoop {
 public:
  // `label` names the progress bar; `total` is the number of samples the run will try.
  SampleLoop(const std::string& label, int64_t total);

  // Runs `work` for the sample read from `source`. Error(InvalidArgument) concerns every sample
  // and is rethrown, as is Error(Output) (a full disk fails every later write too); any other
  // error is printed as "error: SOURCE: message" (the source once) and counted. Returns whether
  // the work succeeded.
  bool run(const std::string& source, const std::function<void()>& work);
  // A second pass over a sample that succeeded in run() (e.g. drawing after all maps are known): a
  // failure here turns it into a failed sample.
  bool run_again(const std::string& source, const std::function<void()>& work);
  // Counts a sample that failed before any work (e.g. a missing file), with its message.
  void fail(const std::string& source, const std::string& message, int code);

  int64_t failed() const { return failed_; }
  int64_t succeeded() const { return done_ - failed_; }
  ProgressBar& bar() { return bar_; }
  // kExitOk; kExitPartial when some samples failed (saying how many); the last failure's exit
  // code when all failed.
  int finish();

 private:
  ProgressBar bar_;
  int64_t total_, done_ = 0, failed_ = 0;
  int last_code_ = 0;
  bool attempt(const std::string& source, const std::function<void()>& work);
  void report(const std::string& source, const std::string& message, int code);
};

}  // namespace bagnet::cli
