#pragma once
// Fitting text into a width without losing the part that tells two labels apart: titles and
// captions are wrapped onto more lines; only when a line budget is exhausted is the middle of the
// text (never its start or end) replaced by "...". Internal to the vision library.
#include <functional>
#include <string>
#include <vector>

namespace bagnet::detail {

// Pixel width of a string in the caller's font.
using TextWidth = std::function<int(const std::string&)>;

// Splits `text` into lines no wider than `width`: at spaces (which are dropped) where possible,
// else after one of "_-./#,:" , else between any two characters; a single character wider than
// `width` gets a line of its own. Joining the lines with the dropped spaces gives `text` back.
// With max_lines > 0 and more lines needed, the middle of `text` is replaced by "..." (as little
// as needed) so that it fits in max_lines lines. Empty text gives one empty line.
std::vector<std::string> wrap_text(const std::string& text, int width, const TextWidth& measure,
                                   size_t max_lines = 0);

// `text` if it fits `width`, else its start and end with "..." between them, as much of both as
// fits (the end gets the extra character when the count is odd: file names differ there as often
// as at the start).
std::string abbreviate_middle(const std::string& text, int width, const TextWidth& measure);

}  // namespace bagnet::detail
