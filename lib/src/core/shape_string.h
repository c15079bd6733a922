#pragma once
// "[64, 3, 1, 1]": tensor shapes in messages, written one way everywhere.
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace bagnet::detail {

inline std::string shape_string(c10::ArrayRef<int64_t> sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

}  // namespace bagnet::detail
