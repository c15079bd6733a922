#pragma once
// Input images for commands that take many: files and directories walked recursively, each with an
// output name derived from its path that no other input of the run shares.
#include <filesystem>
#include <string>
#include <vector>

namespace bagnet::cli {

struct ImageFile {
  std::filesystem::path path;  // as found (argument, or argument / relative path)
  std::string name;            // output stem, '/'-separated, unique in the run, no extension
};

struct ImageFiles {
  std::vector<ImageFile> images;
  std::vector<std::string> skipped;    // files in walked directories without an image extension
  std::vector<std::string> missing;    // arguments that do not exist
};

// Arguments naming files are taken as they are (decoding decides); directories are walked
// recursively in sorted order, taking files with image extensions and skipping hidden entries and
// anything under `exclude` (the output directory). The same file given twice is taken once.
// Names: the path inside a walked directory (or the file's stem), with as many parent directories
// prefixed as needed to tell apart inputs that would otherwise share a name (relative to the
// current directory for files inside it; only when the clashing files lie in different
// directories), then the extension (x_png, x_jpg), then a counter.
ImageFiles collect_image_files(const std::vector<std::string>& arguments, const std::filesystem::path& exclude = {});

}  // namespace bagnet::cli
