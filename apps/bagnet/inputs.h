#pragma once
// Runs a subcommand's work once per input file, so that one bad file is reported and skipped
// instead of ending the whole run.
#include <functional>
#include <string>
#include <vector>

namespace bagnet::cli {

// Calls `process` for each input; a bagnet::Error is printed as "error: ..." and counted.
// Returns kExitOk when all succeeded, kExitPartial when some failed, and the exit code of the
// last failure when all failed. Usage errors (InvalidArgument) are rethrown: they concern every input.
int for_each_input(const std::vector<std::string>& inputs, const std::function<void(const std::string&)>& process);

}  // namespace bagnet::cli
