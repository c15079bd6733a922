#include <bagnet/json_text.h>
#include <bagnet/error.h>

#include <cfloat>
#include <cmath>

#include <cstdint>

namespace bagnet {

namespace {

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is not one.
size_t utf8_sequence(const std::string& text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t b = byte(i);
  if (b < 0x80) return 1;
  size_t n = 0;
  uint32_t code = 0, least = 0;
  if ((b & 0xE0) == 0xC0) n = 2, code = b & 0x1F, least = 0x80;
  else if ((b & 0xF0) == 0xE0) n = 3, code = b & 0x0F, least = 0x800;
  else if ((b & 0xF8) == 0xF0) n = 4, code = b & 0x07, least = 0x10000;
  else return 0;
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  if (code < least || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return n;
}

constexpr uint32_t kEscapeBase = 0xF700;  // byte b -> U+F700 + b

void append_utf8(std::string& out, uint32_t code) {  // code in U+0800..U+FFFF
  out += static_cast<char>(0xE0 | (code >> 12));
  out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
  out += static_cast<char>(0x80 | (code & 0x3F));
}

}  // namespace

bool is_valid_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string json_path(const std::string& path) {
  if (is_valid_utf8(path)) return path;
  std::string out;
  for (size_t i = 0; i < path.size();) {
    const size_t n = utf8_sequence(path, i);
    if (n > 0) {
      out.append(path, i, n);
      i += n;
    } else {
      append_utf8(out, kEscapeBase + static_cast<uint8_t>(path[i]));
      ++i;
    }
  }
  return out;
}

std::string path_from_json(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence(text, i);
    if (n == 3) {
      const uint32_t code = ((uint8_t(text[i]) & 0x0F) << 12) | ((uint8_t(text[i + 1]) & 0x3F) << 6) |
                            (uint8_t(text[i + 2]) & 0x3F);
      if (code >= kEscapeBase + 0x80 && code <= kEscapeBase + 0xFF) {
        out += static_cast<char>(code - kEscapeBase);
        i += 3;
        continue;
      }
    }
    const size_t step = n == 0 ? 1 : n;
    out.append(text, i, step);
    i += step;
  }
  return out;
}

std::string to_json_text(const nlohmann::json& document, int indent) {
  return document.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

int64_t json_integer(const nlohmann::json& value, const std::string& what) {
  if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
  if (value.is_number_unsigned() && value.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(value.get<uint64_t>());
  fail(ErrorKind::BadInput, what, ": expected an integer, got ", to_json_text(value).substr(0, 40));
}

float json_float(const nlohmann::json& value, const std::string& what) {
  if (value.is_number()) {
    const double v = value.get<double>();
    if (std::isfinite(v) && std::abs(v) <= static_cast<double>(FLT_MAX)) return static_cast<float>(v);
  }
  fail(ErrorKind::BadInput, what, ": expected a finite number in float's range, got ", to_json_text(value).substr(0, 40));
}

}  // namespace bagnet
