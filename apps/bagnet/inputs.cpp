#include "inputs.h"

#include "options.h"

#include <bagnet/error.h>

#include <iostream>

namespace bagnet::cli {

int for_each_input(const std::vector<std::string>& inputs, const std::function<void(const std::string&)>& process) {
  size_t failed = 0;
  int last_code = kExitOk;
  for (const auto& input : inputs) {
    try {
      process(input);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::InvalidArgument) throw;
      std::cerr << "error: " << in_cli_terms(e.what()) << "\n";
      ++failed;
      last_code = e.kind() == ErrorKind::BadInput ? kExitBadInput : kExitRuntime;
    }
  }
  if (failed == 0) return kExitOk;
  if (inputs.size() > 1)
    std::cerr << failed << " of " << inputs.size() << " inputs failed\n";
  return failed == inputs.size() ? last_code : kExitPartial;
}

}  // namespace bagnet::cli
