#include "samples.h"

#include "options.h"

#include <bagnet/dataset.h>
#include <bagnet/error.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>

namespace bagnet::cli {

// One input argument: an image file (no label), or a dataset.
struct Samples::Part {
  std::string path;
  std::unique_ptr<Dataset> dataset;
  int64_t size() const { return dataset ? static_cast<int64_t>(dataset->size()) : 1; }
  SampleInfo info(int64_t i) const {
    if (!dataset) return SampleInfo{0, path, "", std::nullopt};
    const DatasetSample s = dataset->sample(static_cast<size_t>(i));
    return SampleInfo{0, s.source, dataset->description(), s.label >= 0 ? std::optional<int64_t>(s.label) : std::nullopt};
  }
  cv::Mat image(int64_t i) const { return dataset ? dataset->image(static_cast<size_t>(i)) : read_image(path); }
};

Samples::Samples(const std::vector<std::string>& inputs, InputKinds kinds) {
  for (const auto& input : inputs) {
    auto part = std::make_unique<Part>();
    part->path = input;
    if (kinds == InputKinds::ImagesAndDatasets && is_dataset_path(input)) part->dataset = open_dataset(input);
    starts_.push_back(total_);
    total_ += part->size();
    parts_.push_back(std::move(part));
  }
}

Samples::~Samples() = default;

const Samples::Part& Samples::locate(int64_t index, int64_t& local) const {
  BAGNET_CHECK(index >= 0 && index < total_, ErrorKind::InvalidArgument, "sample ", index, " of ", total_);
  const size_t p = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), index) - starts_.begin() - 1);
  local = index - starts_[p];
  return *parts_[p];
}

SampleInfo Samples::info(int64_t index) const {
  int64_t local = 0;
  SampleInfo s = locate(index, local).info(local);
  s.index = index;
  return s;
}

void Samples::use_model_classes(const std::vector<std::string>& model_names) {
  for (auto& part : parts_)
    if (part->dataset) {
      std::string note;
      part->dataset = relabel_for_model(std::move(part->dataset), model_names, &note);
      if (!note.empty()) std::cerr << "note: " << note << "\n";
    }
}

cv::Mat Samples::image(int64_t index) const {
  int64_t local = 0;
  return locate(index, local).image(local);
}

std::vector<int64_t> random_subset(int64_t total, int64_t limit, uint64_t seed) {
  std::vector<int64_t> all(static_cast<size_t>(total));
  std::iota(all.begin(), all.end(), 0);
  if (limit == 0 || limit >= total) return all;
  std::mt19937_64 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(static_cast<size_t>(limit));
  std::sort(all.begin(), all.end());
  return all;
}

std::pair<int64_t, int64_t> parse_shard(const std::string& text) {
  if (text.empty()) return {0, 1};
  const size_t slash = text.find('/');
  try {
    if (slash != std::string::npos) {
      size_t a = 0, b = 0;
      const int64_t i = std::stoll(text.substr(0, slash), &a);
      const int64_t n = std::stoll(text.substr(slash + 1), &b);
      if (a == slash && b == text.size() - slash - 1 && n >= 1 && i >= 0 && i < n) return {i, n};
    }
  } catch (const std::exception&) {
  }
  throw UsageError("--shard must be I/N with 0 <= I < N, got '" + text + "'");
}

}  // namespace bagnet::cli
