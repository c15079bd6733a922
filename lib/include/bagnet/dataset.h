#pragma once
// Image collections for training, evaluation and every command that takes datasets (OpenCV part).
// Three layouts, told apart by the path (is_dataset_path):
//   - a directory: its image files, recursively, in sorted path order. With no image directly in
//     it, its sub-folders are the classes (torchvision's ImageFolder): the sorted sub-folder names
//     are the class names, their index the label. With images directly in it, every image below
//     it is a sample without a label (a folder of photos to explain);
//   - a `.csv` file: lines `path,label` (relative paths resolved against the CSV's folder; label a
//     class index or a class name; an optional header `path,label`; a line with a path alone has
//     no label);
//   - an `*-images-idx3-ubyte[.gz]` file: IDX images (the MNIST / Fashion-MNIST format), labels
//     from the `*-labels-idx1-ubyte[.gz]` file beside it.
//
//   auto data = bagnet::open_dataset("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
//   cv::Mat rgb = data->image(0);          // CV_32FC3 RGB in [0, 1], like read_image()
//   int64_t label = data->sample(0).label; // 9 (ankle boot)
#include <bagnet/evidence.h>
#include <bagnet/examples.h>
#include <bagnet/image.h>

#include <opencv2/core.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bagnet {

struct DatasetOptions {
  // File name endings (lowercase) counted as images in image folders.
  std::vector<std::string> extensions = image_extensions();  // image.h
  // Class names for layouts that carry none (IDX files, CSVs with numeric labels); empty: none.
  std::vector<std::string> class_names;
};

struct DatasetSample {
  std::string source;   // image file path, or "<images idx file>#<index>" for IDX
  int64_t label = -1;   // class index, -1 when unknown
  std::string origin;   // where the label comes from, for messages: "list.csv:7", "<labels idx file>#<index>",
                        // or the image path (image folders)
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::size_t size() const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;  // index -> name (may be empty)
  virtual DatasetSample sample(std::size_t index) const = 0;
  // Decoded image, CV_32FC3 RGB in [0, 1] (grey replicated), the same conventions as read_image().
  // Throws Error(BadInput) naming the file when it cannot be decoded.
  virtual cv::Mat image(std::size_t index) const = 0;
  virtual std::string description() const = 0;  // e.g. "IDX t10k-images-idx3-ubyte.gz (10000 images)"
};

// Files under `folder`, recursively, in sorted order. Symbolic links to files and folders are
// followed; a folder reached a second time (a link loop, or two links to one folder) is walked once
// and listed in `repeated_folders`; hidden entries (names starting with '.') and folders for which
// `skip_folder` returns true are left out. Throws Error(BadInput) when a folder cannot be listed.
struct FolderFiles {
  std::vector<std::filesystem::path> files;             // regular files, as reached (links not resolved)
  std::vector<std::filesystem::path> repeated_folders;  // reached again, not walked twice
};
FolderFiles list_folder_files(const std::filesystem::path& folder,
                              const std::function<bool(const std::filesystem::path&)>& skip_folder = {});

// True when `path` names a dataset by the conventions above (a directory, a .csv, an
// *-images-idx3-ubyte[.gz] file); anything else is taken as an image file.
bool is_dataset_path(const std::string& path);

// Opens a dataset (see the layouts above). Throws Error(BadInput) naming the file (and the line of
// a CSV) for missing, unreadable, corrupt or inconsistent data, e.g. an IDX label count that
// differs from the image count.
std::unique_ptr<Dataset> open_dataset(const std::string& path, const DatasetOptions& options = {});

// The number of classes a dataset's labels need: class_names().size() when names are known, else
// the largest label + 1 (0 when no sample is labelled).
int64_t dataset_class_count(const Dataset& dataset);

// The one rule by which every command matches a dataset's labels to a model's classes:
//   - a dataset whose class names are all among the model's has its labels remapped by name (class
//     folders sorted differently from the model's classes, or a subset of them);
//   - one without class names (IDX, CSV with index labels) or with none of the model's (ImageNet
//     folders named by WordNet id) keeps its labels as the model's class indices;
//   - one with only some of the model's names is refused.
// Every label must then be one of the model's classes. Throws Error(BadInput) naming the file (and
// the CSV line, or the IDX index) of the first label that is not. Returns a view of `dataset` with
// the model's labels and class names.
// `note`, when given, is set to a sentence saying so when labels are taken by the sorted position of
// class names that the model does not have (the caller shows it: it is easy to get wrong).
std::unique_ptr<Dataset> relabel_for_model(std::unique_ptr<Dataset> dataset, const std::vector<std::string>& model_names,
                                           std::string* note = nullptr);

// A dataset as model input for training/evaluation: every image goes through `preprocess`. When
// all preprocessed images fit into `cache_mb` they are decoded once up front (progress reported as
// "loading"), else on every request. Throws Error(BadInput) naming the file when an image cannot
// be decoded or its preprocessed size differs from the others (fix the size with a crop).
class DatasetSource : public ExampleSource {
 public:
  DatasetSource(const Dataset& dataset, InputSpec preprocess, int64_t cache_mb = 2048,
                const ProgressCallback& on_progress = {});
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  int64_t label(int64_t index) const override { return labels_.at(static_cast<size_t>(index)); }
  torch::Tensor images(const std::vector<int64_t>& indices) const override;  // [B, C, H, W] float32
  std::string source(int64_t index) const override;
  const InputSpec& preprocess() const { return preprocess_; }

 private:
  torch::Tensor load(int64_t index) const;
  const Dataset& dataset_;
  InputSpec preprocess_;
  std::vector<int64_t> labels_;
  std::vector<int64_t> shape_;  // C, H, W of the first image
  torch::Tensor cache_;         // [N, C, H, W] when cached
};

// Per-channel mean and standard deviation of the preprocessed pixel values (on [0, 1], before
// normalisation) over up to `max_images` evenly spaced images: the normalisation for training
// from scratch. Sets preprocess.mean/std.
void estimate_normalisation(const Dataset& dataset, InputSpec& preprocess, int64_t max_images = 10000);

}  // namespace bagnet
