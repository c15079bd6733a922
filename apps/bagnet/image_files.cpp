#include "image_files.h"

#include <bagnet/dataset.h>

#include <algorithm>
#include <map>
#include <set>

namespace fs = std::filesystem;

namespace bagnet::cli {
namespace {

struct Candidate {
  fs::path path;
  std::vector<std::string> dirs;  // parent directories of the canonical path, outermost first
  size_t inner = 0;               // how many of them lie inside the walked directory (always named)
  size_t level = 0;               // how many more outer directories the name carries
  bool extension = false;
  std::string stem, ext;

  std::string name() const {
    std::string out;
    const size_t count = std::min(dirs.size(), inner + level);
    for (size_t i = dirs.size() - count; i < dirs.size(); ++i) out += dirs[i] + "/";
    out += stem;
    if (extension && !ext.empty()) out += "_" + ext;
    return out;
  }
};

bool inside(const fs::path& path, const fs::path& dir) {
  if (dir.empty()) return false;
  const auto rel = path.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != "..";
}

Candidate make_candidate(const fs::path& path, size_t inner) {
  Candidate c;
  c.path = path;
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(fs::absolute(path, ec), ec);
  for (const auto& part : canonical.parent_path().relative_path()) c.dirs.push_back(part.string());
  c.inner = std::min(inner, c.dirs.size());
  c.stem = path.stem().string();
  c.ext = path.extension().string();
  if (!c.ext.empty()) c.ext.erase(0, 1);
  return c;
}

}  // namespace

bool has_image_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::set<std::string> known{".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"};
  return known.count(ext) > 0;
}

ImageFiles collect_image_files(const std::vector<std::string>& arguments, const fs::path& exclude) {
  ImageFiles result;
  std::vector<Candidate> candidates;
  std::set<fs::path> seen;
  std::error_code ec;
  const fs::path excluded = exclude.empty() ? fs::path() : fs::weakly_canonical(fs::absolute(exclude), ec);
  auto add = [&](const fs::path& path, size_t inner) {
    const fs::path key = fs::weakly_canonical(fs::absolute(path), ec);
    if (!seen.insert(key).second) return;
    candidates.push_back(make_candidate(path, inner));
  };
  for (const auto& argument : arguments) {
    const fs::path root(argument);
    if (!fs::exists(root, ec)) {
      result.missing.push_back(argument);
      continue;
    }
    if (!fs::is_directory(root, ec)) {
      add(root, 0);
      continue;
    }
    std::vector<fs::path> files;
    const FolderFiles walk = list_folder_files(root, [&](const fs::path& folder) {
      return inside(fs::weakly_canonical(fs::absolute(folder), ec), excluded) ||
             fs::weakly_canonical(fs::absolute(folder), ec) == excluded;
    });
    for (const auto& p : walk.files) {
      if (inside(fs::weakly_canonical(fs::absolute(p), ec), excluded)) continue;
      if (has_image_extension(p))
        files.push_back(p);
      else
        result.skipped.push_back(p.string());
    }
    for (const auto& folder : walk.repeated_folders)
      result.skipped.push_back(folder.string() + "/ (a folder reached again through a link: walked once)");
    for (const auto& f : files) {
      size_t inner = 0;
      for (const auto& part : f.lexically_relative(root).parent_path()) {
        (void)part;
        ++inner;
      }
      add(f, inner);
    }
  }
  std::sort(result.skipped.begin(), result.skipped.end());

  // Lengthen colliding names until they differ: outer directories first, then the extension,
  // then (same file reached by different spellings is already removed) a counter.
  for (bool changed = true; changed;) {
    changed = false;
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t i = 0; i < candidates.size(); ++i) groups[candidates[i].name()].push_back(i);
    for (auto& [name, members] : groups) {
      if (members.size() < 2) continue;
      for (size_t i : members) {
        Candidate& c = candidates[i];
        if (c.inner + c.level < c.dirs.size()) {
          ++c.level;
          changed = true;
        } else if (!c.extension && !c.ext.empty()) {
          c.extension = true;
          changed = true;
        }
      }
    }
  }
  std::map<std::string, int> uses;
  for (const auto& c : candidates) {
    std::string name = c.name();
    const int n = ++uses[name];
    if (n > 1) name += "-" + std::to_string(n);
    result.images.push_back({c.path, name});
  }
  return result;
}

}  // namespace bagnet::cli
