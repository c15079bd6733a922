// Image decoding and preprocessing (image.cpp, image_header.cpp): the size limit is checked from the
// header before decoding, then the image is decoded and turned into model input, RGB and grey.
#include "fuzz_input.h"

#include <bagnet/image.h>
#include <bagnet/model_input.h>

#include <cstdlib>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bagnet::set_max_image_pixels(int64_t{1} << 22);  // 4 Mpx: big enough to matter, small enough to be fast
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bagnet::image_header_size(data, size);
  const std::string path = bagnet::fuzz::write_scratch("image", data, size);
  return bagnet::fuzz::expect_clean([&] {
    bagnet::check_image_size(path);
    const cv::Mat rgb = bagnet::read_image(path);
    if (int64_t{rgb.rows} * rgb.cols > bagnet::max_image_pixels()) std::abort();
    for (int64_t channels : {3, 1}) bagnet::preprocess(rgb, bagnet::default_input_spec(channels));
  });
}
