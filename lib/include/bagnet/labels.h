#pragma once
// Class names: the bundled ImageNet list, label files, and parsing of class selections.
#include <cstdint>
#include <string>
#include <vector>

namespace bagnet {

// The 1000 ImageNet class names in index order (embedded from assets/imagenet-classes.txt).
const std::vector<std::string>& imagenet_class_names();

// One name per line (trailing whitespace and a final empty line ignored). Throws Error(BadInput)
// for unreadable files or empty/duplicate names, naming the line.
std::vector<std::string> read_class_names(const std::string& path);

// Names for a model with `num_classes` outputs: from `labels_path` when given (its line count must
// match), else ImageNet's for 1000 classes, else "class_0", "class_1", ...
std::vector<std::string> class_names_for(int64_t num_classes, const std::string& labels_path = "");

// The index of the class called `name`: an exact match wins; otherwise a case-insensitive match
// that is unique. Throws Error(InvalidArgument) for an unknown name, or an ambiguous one (listing
// the candidates with their indices).
int64_t class_by_name(const std::string& name, const std::vector<std::string>& names);
// "all", or a comma-separated list of class indices and/or names (class_by_name) -> indices in the
// order given. Throws Error(InvalidArgument) naming an unknown class, an index out of range, or a
// class given twice.
std::vector<int64_t> parse_class_list(const std::string& spec, const std::vector<std::string>& names);

}  // namespace bagnet
