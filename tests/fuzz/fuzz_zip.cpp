// The zip reader (zip_reader.cpp): every entry it returns must lie inside the buffer.
#include "fuzz_input.h"

#include "core/zip_reader.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bagnet::fuzz::expect_clean([&] {
    if (!bagnet::detail::looks_like_zip(data, size)) return;
    for (const auto& entry : bagnet::detail::read_zip(data, size, "fuzz input")) {
      if (entry.size > 0 && (entry.data < data || entry.data + entry.size > data + size)) std::abort();
      // Touch every byte so that ASan checks the range.
      volatile uint8_t sum = 0;
      for (uint64_t i = 0; i < entry.size; ++i) sum = sum + entry.data[i];
    }
  });
}
