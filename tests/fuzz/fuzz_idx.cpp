// The IDX reader (idx.cpp), gzipped or not, as image files (3 dimensions) and label files (1).
#include "fuzz_input.h"

#include "vision/idx.h"

#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bagnet::fuzz::expect_clean([&] {
    for (int dims : {3, 1}) {
      bagnet::fuzz::expect_clean([&] {
        // As read_idx does: inflation stops at the size the header promises.
        const bagnet::detail::GunzipLimit limit = [dims](const std::vector<uint8_t>& head) {
          return bagnet::detail::idx_promised_bytes(head, dims, "fuzz input");
        };
        const auto bytes = bagnet::detail::maybe_gunzip(std::vector<uint8_t>(data, data + size), "fuzz input", limit);
        const auto array = bagnet::detail::parse_idx(bytes, dims, "fuzz input");
        size_t count = 1;
        for (int64_t d : array.dims) count *= static_cast<size_t>(d);
        if (array.dims.size() != static_cast<size_t>(dims) || array.data.size() != count) std::abort();
      });
    }
  });
}
