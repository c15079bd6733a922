#pragma once
// The inputs of `report` and `patches`: image files and datasets (image folder, CSV, IDX), expanded
// into one numbered list of samples. The number (position in that list) is the canonical order of
// outputs, the key for resuming and the basis of --shard.
#include <bagnet/image.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bagnet::cli {

struct SampleInfo {
  int64_t index = 0;
  std::string source;              // image path, or "<idx file>#<i>"
  std::string dataset;             // description of the dataset it comes from; empty for an image argument
  std::optional<int64_t> label;    // true class when the dataset knows it
};

// What an input argument may be: image files and datasets (report, patches, eval, ...), or image
// files only (heatmap, whose directories are walked into files already and whose image named
// x.csv must fail as an image rather than open as a dataset).
enum class InputKinds { ImagesAndDatasets, ImagesOnly };

class Samples {
 public:
  // Each input is an image file, or (ImagesAndDatasets) a dataset (a directory, a .csv, an
  // *-images-idx3-ubyte[.gz]). Throws Error(BadInput) for unreadable datasets.
  explicit Samples(const std::vector<std::string>& inputs, InputKinds kinds = InputKinds::ImagesAndDatasets);
  ~Samples();
  Samples(const Samples&) = delete;
  Samples& operator=(const Samples&) = delete;

  int64_t size() const { return total_; }
  SampleInfo info(int64_t index) const;
  cv::Mat image(int64_t index) const;        // decoded as read_image() does
  // Translates dataset labels to the model's class indices by relabel_for_model()'s rule (dataset.h),
  // the rule every command uses. Throws Error(BadInput) naming the file (and line) of a label that
  // is not one of the model's classes.
  void use_model_classes(const std::vector<std::string>& model_names);

 private:
  struct Part;
  std::vector<std::unique_ptr<Part>> parts_;
  std::vector<int64_t> starts_;
  int64_t total_ = 0;
  const Part& locate(int64_t index, int64_t& local) const;
};

// `limit` sample indices of 0..total-1 drawn uniformly without replacement (seeded), in increasing
// order; all of them when limit is 0 or >= total (--limit of compare and diff).
std::vector<int64_t> random_subset(int64_t total, int64_t limit, uint64_t seed);

// Parses "--shard I/N" (0 <= I < N); "" means 0/1.
std::pair<int64_t, int64_t> parse_shard(const std::string& text);

}  // namespace bagnet::cli
