#include "sample_loop.h"

#include "options.h"

#include <bagnet/error.h>

#include <iostream>

namespace bagnet::cli {

SampleLoop::SampleLoop(const std::string& label, int64_t total) : bar_(label), total_(total) {}

bool SampleLoop::attempt(const std::string& source, const std::function<void()>& work) {
  try {
    work();
    return true;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::InvalidArgument || e.kind() == ErrorKind::Output) throw;  // every sample's concern
    report(source, in_cli_terms(e.what()), e.kind() == ErrorKind::BadInput ? kExitBadInput : kExitRuntime);
  } catch (const std::exception& e) {  // e.g. a LibTorch error: its first line is the message
    const std::string message = e.what();
    report(source, message.substr(0, message.find('\n')), kExitRuntime);
  }
  return false;
}

bool SampleLoop::run(const std::string& source, const std::function<void()>& work) {
  const bool ok = attempt(source, work);
  ++done_;
  if (!ok) ++failed_;
  bar_.update({done_, total_, source});
  return ok;
}

bool SampleLoop::run_again(const std::string& source, const std::function<void()>& work) {
  const bool ok = attempt(source, work);
  if (!ok) ++failed_;
  return ok;
}

void SampleLoop::fail(const std::string& source, const std::string& message, int code) {
  report(source, message, code);
  ++failed_;
  ++done_;
}

void SampleLoop::report(const std::string& source, const std::string& message, int code) {
  bar_.interrupt();
  // Readers name the file themselves; say the source only when the message does not start with it.
  std::cerr << "error: " << (message.compare(0, source.size(), source) == 0 ? "" : source + ": ") << message << "\n";
  last_code_ = code;
}

int SampleLoop::finish() {
  bar_.interrupt();
  if (failed_ == 0) return kExitOk;
  if (done_ > 1) std::cerr << failed_ << " of " << done_ << " samples failed\n";
  return failed_ == done_ ? last_code_ : kExitPartial;
}

}  // namespace bagnet::cli
