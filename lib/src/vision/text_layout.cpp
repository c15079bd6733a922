#include "text_layout.h"

#include <algorithm>
#include <cstring>

namespace bagnet::detail {
namespace {

bool break_after(char c) { return c != '\0' && std::strchr("_-./#,:", c) != nullptr; }

std::vector<std::string> wrap_all(const std::string& text, int width, const TextWidth& measure) {
  std::vector<std::string> lines;
  const size_t n = text.size();
  size_t pos = 0;
  while (pos < n) {
    while (pos < n && text[pos] == ' ') ++pos;  // a line never starts with the space broken at
    if (pos >= n) break;
    // The longest prefix from pos that fits (at least one character, so a line always advances).
    size_t end = pos + 1;
    while (end < n && measure(text.substr(pos, end + 1 - pos)) <= width) ++end;
    size_t cut = end;
    if (end < n && text[end] != ' ') {
      const size_t space = text.rfind(' ', end - 1);
      if (space != std::string::npos && space > pos) {
        cut = space;
      } else {
        for (size_t i = end; i > pos; --i)
          if (break_after(text[i - 1])) {
            cut = i;
            break;
          }
      }
    }
    std::string line = text.substr(pos, cut - pos);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(line);
    pos = cut;
  }
  if (lines.empty()) lines.emplace_back();
  return lines;
}

std::string middle_cut(const std::string& text, size_t keep) {
  const size_t head = keep / 2, tail = keep - head;
  return text.substr(0, head) + "..." + text.substr(text.size() - tail);
}

}  // namespace

std::vector<std::string> wrap_text(const std::string& text, int width, const TextWidth& measure, size_t max_lines) {
  std::vector<std::string> lines = wrap_all(text, width, measure);
  if (max_lines == 0 || lines.size() <= max_lines) return lines;
  for (size_t keep = text.size() - 1; keep > 0; --keep) {
    lines = wrap_all(middle_cut(text, keep), width, measure);
    if (lines.size() <= max_lines) return lines;
  }
  return wrap_all("...", width, measure);
}

std::string abbreviate_middle(const std::string& text, int width, const TextWidth& measure) {
  if (measure(text) <= width) return text;
  for (size_t keep = text.size() - 1; keep > 0; --keep) {
    const std::string s = middle_cut(text, keep);
    if (measure(s) <= width) return s;
  }
  return "...";
}

}  // namespace bagnet::detail
