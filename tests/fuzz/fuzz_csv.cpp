// The CSV dataset parser (dataset.cpp): a list beside one real image, with and without class names.
// Every sample it accepts has a label in range (or none) and its image decodes or is refused cleanly.
#include "fuzz_input.h"

#include <bagnet/dataset.h>

#include <opencv2/imgcodecs.hpp>

#include <cstdlib>

namespace {

void write_image_once() {
  static const bool written = [] {
    cv::Mat grey(4, 4, CV_8UC1, cv::Scalar(128));
    return cv::imwrite((bagnet::fuzz::scratch_folder() / "a.png").string(), grey);
  }();
  if (!written) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_image_once();
  const std::string csv = bagnet::fuzz::write_scratch("list.csv", data, size);
  for (bool named : {false, true}) {
    bagnet::fuzz::expect_clean([&] {
      bagnet::DatasetOptions options;
      if (named) options.class_names = {"cat", "dog", "a,b"};
      const auto dataset = bagnet::open_dataset(csv, options);
      const int64_t classes = bagnet::dataset_class_count(*dataset);
      for (size_t i = 0; i < dataset->size() && i < 8; ++i) {
        const auto sample = dataset->sample(i);
        if (sample.label < -1 || (sample.label >= 0 && sample.label >= classes)) std::abort();
        bagnet::fuzz::expect_clean([&] { dataset->image(i); });
      }
    });
  }
  return 0;
}
