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
  std::vector<std::string> dirs;  // parent directories, outermost first: of the path relative to the
                                  // current directory when the file lies inside it, else canonical
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
  // The path as reached, links not resolved: a file found through a linked folder is named after
  // that folder, as the user sees it.
  const fs::path reached = fs::absolute(path, ec).lexically_normal();
  // Names are built from the directories relative to the current one where possible, so that a
  // clash is told apart by the folders the user sees (sub/x), never by the current directory's
  // absolute path; outside it (or above the walked directory's inner part) the absolute path.
  const fs::path parent = reached.parent_path();
  const fs::path relative = parent.lexically_relative(fs::current_path(ec));
  std::vector<std::string> relative_dirs;
  bool inside_cwd = !relative.empty();
  for (const auto& part : relative) {
    if (part == "..") inside_cwd = false;
    if (part != ".") relative_dirs.push_back(part.string());
  }
  if (inside_cwd && relative_dirs.size() >= inner) {
    c.dirs = relative_dirs;
  } else {
    for (const auto& part : parent.relative_path()) c.dirs.push_back(part.string());
  }
  c.inner = std::min(inner, c.dirs.size());
  c.stem = path.stem().string();
  c.ext = path.extension().string();
  if (!c.ext.empty()) c.ext.erase(0, 1);
  return c;
}

}  // namespace

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
      if (has_image_extension(p.string()))
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

  // Lengthen colliding names until they differ: outer directories first (only where another
  // member of the clash lies in another directory, so that files of one folder never pull in all
  // its parents), then the extension, then (same file reached by different spellings is already
  // removed) a counter.
  for (bool changed = true; changed;) {
    changed = false;
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t i = 0; i < candidates.size(); ++i) groups[candidates[i].name()].push_back(i);
    for (auto& [name, members] : groups) {
      if (members.size() < 2) continue;
      bool grew = false;
      for (size_t i : members) {
        Candidate& c = candidates[i];
        const bool dirs_differ = std::any_of(members.begin(), members.end(),
                                             [&](size_t j) { return candidates[j].dirs != c.dirs; });
        if (dirs_differ && c.inner + c.level < c.dirs.size()) {
          ++c.level;
          grew = true;
        }
      }
      if (grew) {
        changed = true;
        continue;
      }
      for (size_t i : members) {
        Candidate& c = candidates[i];
        if (!c.extension && !c.ext.empty()) {
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
