#include <bagnet/error.h>
#include <bagnet/labels.h>

#include "file_bytes.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

namespace bagnet {
namespace assets {
extern const char* const imagenet_classes;
}

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::vector<std::string> parse_names(const std::string& text, const std::string& what) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  std::istringstream in(text);
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    names.push_back(trim(line));
  }
  while (!names.empty() && names.back().empty()) names.pop_back();
  for (size_t i = 0; i < names.size(); ++i) {
    BAGNET_CHECK(!names[i].empty(), ErrorKind::BadInput, what, ":", i + 1, ": empty class name");
    BAGNET_CHECK(seen.insert(names[i]).second, ErrorKind::BadInput, what, ":", i + 1, ": duplicate class name '",
                 names[i], "'");
  }
  BAGNET_CHECK(!names.empty(), ErrorKind::BadInput, what, ": no class names");
  return names;
}

}  // namespace

int64_t class_by_name(const std::string& name, const std::vector<std::string>& names) {
  const auto exact = std::find(names.begin(), names.end(), name);
  if (exact != names.end()) return exact - names.begin();
  // Otherwise case-insensitively, and only when that names one class: ImageNet has "Cardigan"
  // (a dog) and "cardigan" (a sweater), so the first hit would silently pick the wrong one.
  std::vector<int64_t> matches;
  const std::string wanted = lower(name);
  for (size_t c = 0; c < names.size(); ++c)
    if (lower(names[c]) == wanted) matches.push_back(static_cast<int64_t>(c));
  BAGNET_CHECK(!matches.empty(), ErrorKind::InvalidArgument, "unknown class '", name, "' (give a class index 0..",
               names.size() - 1, " or a name from the labels)");
  if (matches.size() > 1) {
    std::string candidates;
    for (const int64_t c : matches) candidates += (candidates.empty() ? "" : ", ") + std::to_string(c) + " '" + names[c] + "'";
    fail(ErrorKind::InvalidArgument, "class name '", name, "' is ambiguous: ", candidates,
         " (give the exact name or the index)");
  }
  return matches.front();
}

const std::vector<std::string>& imagenet_class_names() {
  static const std::vector<std::string> names = parse_names(assets::imagenet_classes, "imagenet-classes.txt");
  return names;
}

std::vector<std::string> read_class_names(const std::string& path) {
  const auto bytes = detail::read_file_bytes(path);
  return parse_names(std::string(bytes.begin(), bytes.end()), path);
}

std::vector<std::string> class_names_for(int64_t num_classes, const std::string& labels_path) {
  if (!labels_path.empty()) {
    auto names = read_class_names(labels_path);
    BAGNET_CHECK(static_cast<int64_t>(names.size()) == num_classes, ErrorKind::BadInput, labels_path, ": has ",
                 names.size(), " class names, the model has ", num_classes, " classes");
    return names;
  }
  if (num_classes == static_cast<int64_t>(imagenet_class_names().size())) return imagenet_class_names();
  std::vector<std::string> names;
  for (int64_t c = 0; c < num_classes; ++c) names.push_back("class_" + std::to_string(c));
  return names;
}

std::vector<int64_t> parse_class_list(const std::string& spec, const std::vector<std::string>& names) {
  const auto count = static_cast<int64_t>(names.size());
  std::vector<int64_t> classes;
  if (lower(trim(spec)) == "all") {
    for (int64_t c = 0; c < count; ++c) classes.push_back(c);
    return classes;
  }
  std::istringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    item = trim(item);
    BAGNET_CHECK(!item.empty(), ErrorKind::InvalidArgument, "class list '", spec, "' has an empty entry");
    const bool numeric = std::all_of(item.begin(), item.end(), [](unsigned char c) { return std::isdigit(c); });
    if (numeric) {
      int64_t index = -1;
      try {
        index = std::stoll(item);
      } catch (const std::exception&) {
      }
      BAGNET_CHECK(index >= 0 && index < count, ErrorKind::InvalidArgument, "class ", item,
                   " out of range: the model has ", count, " classes (0..", count - 1, ")");
      classes.push_back(index);
      continue;
    }
    classes.push_back(class_by_name(item, names));
  }
  BAGNET_CHECK(!classes.empty(), ErrorKind::InvalidArgument, "empty class list");
  for (size_t i = 0; i < classes.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      BAGNET_CHECK(classes[i] != classes[j], ErrorKind::InvalidArgument, "class list '", spec, "' names class ",
                   classes[i], " (", names[classes[i]], ") twice");
  return classes;
}

}  // namespace bagnet
