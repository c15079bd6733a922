// The metadata of bagnet-lens model files (model_file.cpp): parse, and what parses must survive a
// round trip through meta_to_json unchanged.
#include "fuzz_input.h"

#include <bagnet/model_file.h>

#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bagnet::fuzz::expect_clean([&] {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const bagnet::ModelMeta meta = bagnet::meta_from_json(text, "fuzz input");
    const std::string once = bagnet::meta_to_json(meta);
    const std::string twice = bagnet::meta_to_json(bagnet::meta_from_json(once, "round trip"));
    if (once != twice) std::abort();
  });
}
