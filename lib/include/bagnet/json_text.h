#pragma once
// JSON text is UTF-8, but file names on Linux are bytes and need not be. Every path written into a
// JSON document goes through json_path(): valid UTF-8 is kept as it is; a name that is not valid
// UTF-8 has each byte that is not part of a valid UTF-8 sequence (always >= 0x80) written as the
// private-use character U+F700 + byte (so byte 0xE9 becomes U+F7E9, "\uf7e9"). The mapping is
// lossless: path_from_json() gives the bytes back. Documents are written with to_json_text(), which
// never fails on a string that escaped this rule (it is replaced by U+FFFD there).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace bagnet {

// True when `text` is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool is_valid_utf8(const std::string& text);

// `path` as a JSON string value, by the rule above.
std::string json_path(const std::string& path);
// The inverse of json_path().
std::string path_from_json(const std::string& text);

// `document.dump(indent)` that never throws on invalid UTF-8 (see above).
std::string to_json_text(const nlohmann::json& document, int indent = -1);

// Numbers from files strangers may have written. nlohmann's get<int64_t>() of 1e300, or get<float>()
// of 1e300, is undefined behaviour (an out-of-range conversion); these check first. An integer must
// be a JSON integer within int64_t, a float a finite number within float's range; otherwise
// Error(BadInput) "<what>: expected ..., got ...".
int64_t json_integer(const nlohmann::json& value, const std::string& what);
float json_float(const nlohmann::json& value, const std::string& what);

}  // namespace bagnet
