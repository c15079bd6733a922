#include <bagnet/dataset.h>
#include <bagnet/error.h>
#include <bagnet/image.h>

#include "idx.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

namespace bagnet {
namespace {

namespace fs = std::filesystem;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Images and labels held in memory, decoded on request.
class IdxDataset : public Dataset {
 public:
  IdxDataset(const std::string& images_path, const std::string& labels_path, const DatasetOptions& options)
      : path_(images_path), labels_path_(labels_path), names_(options.class_names) {
    detail::IdxArray images = detail::read_idx(images_path, 3);
    detail::IdxArray labels = detail::read_idx(labels_path, 1);
    BAGNET_CHECK(images.dims[0] == labels.dims[0], ErrorKind::BadInput, labels_path, ": holds ", labels.dims[0],
                 " labels, but ", images_path, " holds ", images.dims[0], " images");
    BAGNET_CHECK(images.dims[1] > 0 && images.dims[2] > 0, ErrorKind::BadInput, images_path,
                 ": images of size ", images.dims[1], "x", images.dims[2]);
    for (size_t i = 0; i < labels.data.size() && !names_.empty(); ++i)
      BAGNET_CHECK(labels.data[i] < names_.size(), ErrorKind::BadInput, labels_path, ": label ", int(labels.data[i]),
                   " of sample ", i, " is out of range for ", names_.size(), " class names");
    rows_ = static_cast<int>(images.dims[1]);
    cols_ = static_cast<int>(images.dims[2]);
    pixels_ = std::move(images.data);
    labels_ = std::move(labels.data);
  }
  std::size_t size() const override { return labels_.size(); }
  const std::vector<std::string>& class_names() const override { return names_; }
  DatasetSample sample(std::size_t index) const override {
    check(index);
    return {path_ + "#" + std::to_string(index), labels_[index], labels_path_ + "#" + std::to_string(index)};
  }
  cv::Mat image(std::size_t index) const override {
    check(index);
    const size_t plane = size_t(rows_) * size_t(cols_);
    cv::Mat grey(rows_, cols_, CV_8UC1, const_cast<uint8_t*>(pixels_.data() + index * plane));
    cv::Mat rgb, out;
    cv::cvtColor(grey, rgb, cv::COLOR_GRAY2RGB);
    rgb.convertTo(out, CV_32F);
    out /= 255.0f;  // as read_image(): a float32 division
    return out;
  }
  std::string description() const override {
    return "IDX " + fs::path(path_).filename().string() + " (" + std::to_string(size()) + " images, " +
           std::to_string(rows_) + "x" + std::to_string(cols_) + ")";
  }

 private:
  void check(std::size_t index) const {
    BAGNET_CHECK(index < labels_.size(), ErrorKind::InvalidArgument, "sample ", index, " out of range (",
                 labels_.size(), " samples)");
  }
  std::string path_, labels_path_;
  std::vector<std::string> names_;
  int rows_ = 0, cols_ = 0;
  std::vector<uint8_t> pixels_, labels_;
};

// Image files with labels (image folders and CSV lists).
class FileDataset : public Dataset {
 public:
  FileDataset(std::string description, std::vector<DatasetSample> samples, std::vector<std::string> names)
      : description_(std::move(description)), samples_(std::move(samples)), names_(std::move(names)) {}
  std::size_t size() const override { return samples_.size(); }
  const std::vector<std::string>& class_names() const override { return names_; }
  DatasetSample sample(std::size_t index) const override {
    BAGNET_CHECK(index < samples_.size(), ErrorKind::InvalidArgument, "sample ", index, " out of range (",
                 samples_.size(), " samples)");
    return samples_[index];
  }
  cv::Mat image(std::size_t index) const override { return read_image(sample(index).source); }
  std::string description() const override { return description_; }

 private:
  std::string description_;
  std::vector<DatasetSample> samples_;
  std::vector<std::string> names_;
};

}  // namespace

FolderFiles list_folder_files(const fs::path& folder, const std::function<bool(const fs::path&)>& skip_folder) {
  FolderFiles out;
  std::set<fs::path> walked;  // canonical paths of the folders walked so far
  std::vector<fs::path> pending{folder};
  while (!pending.empty()) {
    const fs::path dir = pending.back();
    pending.pop_back();
    std::error_code ec;
    const fs::path canonical = fs::canonical(dir, ec);
    BAGNET_CHECK(!ec, ErrorKind::BadInput, dir.string(), ": cannot list (", ec.message(), ")");
    if (!walked.insert(canonical).second) {
      out.repeated_folders.push_back(dir);
      continue;
    }
    std::vector<fs::path> subfolders;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const fs::path& p = it->path();
      if (p.filename().string()[0] == '.') continue;
      std::error_code type_ec;  // a dangling link is neither: left out
      if (it->is_directory(type_ec)) {
        if (!skip_folder || !skip_folder(p)) subfolders.push_back(p);
      } else if (it->is_regular_file(type_ec)) {
        out.files.push_back(p);
      }
    }
    BAGNET_CHECK(!ec, ErrorKind::BadInput, dir.string(), ": cannot list (", ec.message(), ")");
    // Depth-first in sorted order, so the first spelling of a repeated folder is the sorted-first one.
    std::sort(subfolders.rbegin(), subfolders.rend());
    for (auto& s : subfolders) pending.push_back(std::move(s));
  }
  std::sort(out.files.begin(), out.files.end());
  return out;
}

namespace {

bool is_listed_image(const fs::path& file, const DatasetOptions& options) {
  const std::string ext = lower(file.extension().string());
  return std::find(options.extensions.begin(), options.extensions.end(), ext) != options.extensions.end();
}

// Images directly in the folder: an unlabelled collection of every image below it, recursively.
std::unique_ptr<Dataset> open_unlabelled_folder(const fs::path& root, const DatasetOptions& options) {
  std::vector<DatasetSample> samples;
  for (const auto& file : list_folder_files(root).files)
    if (is_listed_image(file, options)) samples.push_back({file.string(), -1, file.string()});
  const std::string description = "image folder " + root.string() + " (" + std::to_string(samples.size()) +
                                  " images, unlabelled)";
  return std::make_unique<FileDataset>(description, std::move(samples), std::vector<std::string>{});
}

std::unique_ptr<Dataset> open_image_folder(const fs::path& root, const DatasetOptions& options) {
  std::vector<std::string> classes;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.path().filename().string()[0] != '.' && !entry.is_directory() && is_listed_image(entry.path(), options))
      return open_unlabelled_folder(root, options);
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.is_directory() && entry.path().filename().string()[0] != '.')
      classes.push_back(entry.path().filename().string());
  BAGNET_CHECK(!ec, ErrorKind::BadInput, root.string(), ": cannot list (", ec.message(), ")");
  std::sort(classes.begin(), classes.end());
  BAGNET_CHECK(!classes.empty(), ErrorKind::BadInput, root.string(),
               ": no class sub-folders (an image folder needs one sub-folder of images per class)");
  std::vector<DatasetSample> samples;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<std::string> files;
    const fs::path folder = root / classes[c];
    for (const auto& file : list_folder_files(folder).files)
      if (is_listed_image(file, options)) files.push_back(file.string());
    BAGNET_CHECK(!files.empty(), ErrorKind::BadInput, folder.string(), ": class folder without images");
    for (auto& f : files) samples.push_back({f, static_cast<int64_t>(c), f});
  }
  const std::string description = "image folder " + root.string() + " (" + std::to_string(samples.size()) +
                                  " images, " + std::to_string(classes.size()) + " classes)";
  return std::make_unique<FileDataset>(description, std::move(samples), std::move(classes));
}

// Splits one CSV line into fields; double quotes protect commas ("" is a literal quote).
std::vector<std::string> split_csv(const std::string& line, bool& ok) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  ok = true;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') fields.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else fields.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  ok = !quoted;
  for (auto& f : fields) {
    const auto first = f.find_first_not_of(" \t"), last = f.find_last_not_of(" \t");
    f = first == std::string::npos ? "" : f.substr(first, last - first + 1);
  }
  return fields;
}

// Signed or fractional numbers ("-1", "+2", "3.0", "1e3"): never class names.
bool looks_numeric(const std::string& text) {
  static const std::regex number("[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?");
  return std::regex_match(text, number);
}

bool parse_index(const std::string& text, int64_t& value) {
  if (text.empty() || text.size() > 12) return false;
  for (char c : text)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  value = std::stoll(text);
  return true;
}

// No path,label line is anywhere near this long; a longer one is refused before it is held whole.
constexpr size_t kMaxCsvLine = 1 << 16;

// One line (without its newline) of at most kMaxCsvLine characters; false at the end of the file.
bool read_csv_line(std::istream& in, std::string& line, const std::string& where) {
  line.clear();
  bool any = false;
  for (int c = in.get(); c != std::char_traits<char>::eof(); c = in.get()) {
    any = true;
    if (c == '\n') return true;
    BAGNET_CHECK(line.size() < kMaxCsvLine, ErrorKind::BadInput, where, ": a line longer than ", kMaxCsvLine,
                 " characters (not a path,label CSV?)");
    line.push_back(static_cast<char>(c));
  }
  return any;
}

// A line as quoted in a message: its first 100 characters, and how long it is when longer.
std::string quoted_start(const std::string& line) {
  constexpr size_t kShown = 100;
  if (line.size() <= kShown) return "'" + line + "'";
  return "'" + line.substr(0, kShown) + "...' (" + std::to_string(line.size()) + " characters)";
}

std::unique_ptr<Dataset> open_csv(const fs::path& csv, const DatasetOptions& options) {
  std::ifstream in(csv);
  BAGNET_CHECK(in.good(), ErrorKind::BadInput, csv.string(), ": cannot open");
  const fs::path base = csv.parent_path();
  struct Row {
    std::string path, label;
    size_t line;
  };
  std::vector<Row> rows;
  std::string line;
  for (size_t number = 1; read_csv_line(in, line, csv.string() + ":" + std::to_string(number)); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    bool ok = true;
    const auto fields = split_csv(line, ok);
    const std::string where = csv.string() + ":" + std::to_string(number);
    BAGNET_CHECK(ok, ErrorKind::BadInput, where, ": unterminated quote");
    BAGNET_CHECK(fields.size() <= 2 && !fields[0].empty(), ErrorKind::BadInput, where,
                 ": expected 'path,label' (or a path alone), got ", quoted_start(line));
    if (rows.empty() && number == 1 && lower(fields[0]) == "path") continue;  // header
    Row row{fields[0], fields.size() == 2 ? fields[1] : "", number};
    BAGNET_CHECK(fields.size() == 1 || !row.label.empty(), ErrorKind::BadInput, where, ": empty label");
    const fs::path resolved = fs::path(row.path).is_absolute() ? fs::path(row.path) : base / row.path;
    std::error_code ec;
    BAGNET_CHECK(fs::is_regular_file(resolved, ec), ErrorKind::BadInput, where, ": image '", resolved.string(),
                 "' does not exist");
    row.path = resolved.string();
    rows.push_back(std::move(row));
  }
  BAGNET_CHECK(!in.bad(), ErrorKind::BadInput, csv.string(), ": read error");
  BAGNET_CHECK(!rows.empty(), ErrorKind::BadInput, csv.string(), ": no samples (expected lines 'path,label')");

  // Labels are all indices or all names; names become classes in sorted order, like folders.
  bool named = false;
  for (const auto& r : rows) named = named || (!r.label.empty() && !looks_numeric(r.label));
  std::vector<std::string> names = options.class_names;
  std::map<std::string, int64_t> by_name;
  if (named && names.empty()) {
    for (const auto& r : rows)
      if (!r.label.empty() && !looks_numeric(r.label)) by_name.emplace(r.label, 0);
    for (auto& [name, index] : by_name) {
      index = static_cast<int64_t>(names.size());
      names.push_back(name);
    }
  } else {
    for (size_t i = 0; i < names.size(); ++i) by_name.emplace(names[i], static_cast<int64_t>(i));
  }
  std::vector<DatasetSample> samples;
  for (const auto& r : rows) {
    const std::string where = csv.string() + ":" + std::to_string(r.line);
    int64_t label = -1;
    if (!r.label.empty()) {
      const auto found = by_name.find(r.label);
      if (found != by_name.end()) {
        label = found->second;
      } else if (looks_numeric(r.label) && !parse_index(r.label, label)) {
        // "-1" or "3.0" is a number, not a class name: taking it as a name would give it a class silently.
        fail(ErrorKind::BadInput, where, ": label '", r.label, "' is not a class index (0, 1, 2, ...) or a class name");
      } else {
        BAGNET_CHECK(parse_index(r.label, label), ErrorKind::BadInput, where, ": unknown class '", r.label, "'");
        BAGNET_CHECK(!named || !options.class_names.empty(), ErrorKind::BadInput, where, ": label '", r.label,
                     "' is an index, but other lines name classes; use one kind of label throughout");
        BAGNET_CHECK(names.empty() || label < static_cast<int64_t>(names.size()), ErrorKind::BadInput, where,
                     ": class index ", label, " out of range for ", names.size(), " classes");
      }
    }
    samples.push_back({r.path, label, where});
  }
  const std::string description =
      "CSV " + csv.filename().string() + " (" + std::to_string(samples.size()) + " images)";
  return std::make_unique<FileDataset>(description, std::move(samples), std::move(names));
}

// "x-images-idx3-ubyte[.gz]" -> "x-labels-idx1-ubyte[.gz]" (either compression).
std::string idx_labels_path(const std::string& images) {
  const fs::path p(images);
  std::string name = p.filename().string();
  for (const std::string& from : {std::string("-images-idx3-ubyte"), std::string("-images.idx3-ubyte")}) {
    const auto at = name.find(from);
    if (at == std::string::npos) continue;
    const std::string to = from[7] == '.' ? "-labels.idx1-ubyte" : "-labels-idx1-ubyte";
    const std::string stem = name.substr(0, at) + to;
    for (const std::string& suffix : {std::string(ends_with(name, ".gz") ? ".gz" : ""), std::string(".gz"), std::string("")}) {
      const fs::path candidate = p.parent_path() / (stem + suffix);
      std::error_code ec;
      if (fs::exists(candidate, ec)) return candidate.string();
    }
    fail(ErrorKind::BadInput, images, ": labels file ", (p.parent_path() / (stem + (ends_with(name, ".gz") ? ".gz" : ""))).string(),
         " not found beside it");
  }
  return "";
}

}  // namespace

bool is_dataset_path(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return true;
  const std::string name = lower(fs::path(path).filename().string());
  return ends_with(name, ".csv") || name.find("-images-idx3-ubyte") != std::string::npos;
}

std::unique_ptr<Dataset> open_dataset(const std::string& path, const DatasetOptions& options) {
  std::error_code ec;
  BAGNET_CHECK(fs::exists(path, ec), ErrorKind::BadInput, path, ": no such file or directory");
  if (fs::is_directory(path, ec)) return open_image_folder(path, options);
  const std::string name = lower(fs::path(path).filename().string());
  if (ends_with(name, ".csv")) return open_csv(path, options);
  const std::string labels = idx_labels_path(path);
  BAGNET_CHECK(!labels.empty(), ErrorKind::BadInput, path,
               ": not a dataset (expected a folder of class folders, a .csv list, or an "
               "*-images-idx3-ubyte[.gz] file)");
  return std::make_unique<IdxDataset>(path, labels, options);
}

namespace {

// A dataset seen with a model's class indices and names.
class RelabelledDataset : public Dataset {
 public:
  RelabelledDataset(std::unique_ptr<Dataset> inner, std::vector<int64_t> to_model, std::vector<std::string> names)
      : inner_(std::move(inner)), to_model_(std::move(to_model)), names_(std::move(names)) {}
  std::size_t size() const override { return inner_->size(); }
  const std::vector<std::string>& class_names() const override { return names_; }
  DatasetSample sample(std::size_t index) const override {
    DatasetSample s = inner_->sample(index);
    if (s.label >= 0 && !to_model_.empty()) s.label = to_model_[static_cast<size_t>(s.label)];
    return s;
  }
  cv::Mat image(std::size_t index) const override { return inner_->image(index); }
  std::string description() const override { return inner_->description(); }

 private:
  std::unique_ptr<Dataset> inner_;
  std::vector<int64_t> to_model_;  // dataset label -> model class; empty: the same index
  std::vector<std::string> names_;
};

}  // namespace

std::unique_ptr<Dataset> relabel_for_model(std::unique_ptr<Dataset> dataset, const std::vector<std::string>& model_names,
                                           std::string* note) {
  const auto& names = dataset->class_names();
  std::vector<int64_t> to_model;
  std::string missing;
  for (const auto& name : names) {
    const auto found = std::find(model_names.begin(), model_names.end(), name);
    if (found == model_names.end()) {
      if (missing.empty()) missing = name;
      continue;
    }
    to_model.push_back(static_cast<int64_t>(found - model_names.begin()));
  }
  if (!to_model.empty())
    BAGNET_CHECK(missing.empty(), ErrorKind::BadInput, dataset->description(), ": class '", missing,
                 "' is not one of the model's classes (", to_model.size(), " of the dataset's ", names.size(),
                 " class names are); use the model's class names or give the model's labels");
  if (note && to_model.empty() && !names.empty())
    *note = dataset->description() + ": none of its " + std::to_string(names.size()) + " class names ('" + names[0] +
            "', ...) is a class of the model, so its labels are taken as the model's class indices by the sorted "
            "position of the names ('" + names[0] + "' -> class 0" + (model_names.empty() ? "" : ", " + model_names[0]) + ")";
  const auto classes = static_cast<int64_t>(model_names.size());
  auto view = std::make_unique<RelabelledDataset>(std::move(dataset), std::move(to_model), model_names);
  for (size_t i = 0; i < view->size(); ++i) {
    const DatasetSample s = view->sample(i);
    BAGNET_CHECK(s.label < classes, ErrorKind::BadInput, s.origin, ": label ", s.label,
                 " is not a class of the model, which has ", classes, " classes (0..", classes - 1, ")");
  }
  return view;
}

int64_t dataset_class_count(const Dataset& dataset) {
  if (!dataset.class_names().empty()) return static_cast<int64_t>(dataset.class_names().size());
  int64_t largest = -1;
  for (size_t i = 0; i < dataset.size(); ++i) largest = std::max(largest, dataset.sample(i).label);
  return largest + 1;
}

}  // namespace bagnet
