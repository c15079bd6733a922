#pragma once
// Image decoding and preprocessing (OpenCV part). Keeps the transform from the original image to
// the model input so that evidence boxes can be drawn on the original pixels.
//
//   bagnet::Preprocess prep;                              // resize 256, centre crop 224, ImageNet mean/std
//   bagnet::ModelInput in = bagnet::load_image("cat.jpg", prep);
//   in.tensor;                                            // [3, 224, 224] float32, normalised
//   bagnet::BoxF box = in.transform.to_original(map.geometry.cell_box(0, 0));
#include <bagnet/arch.h>

#include <opencv2/core.hpp>
#include <torch/types.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace bagnet {

struct Preprocess {
  std::optional<int64_t> resize = 256;   // shorter side to this many pixels; nullopt: keep size
  std::optional<int64_t> crop = 224;     // centre crop to a square of this side; nullopt: no crop
  int64_t channels = 3;                  // 3: RGB, 1: grey (for single-channel models)
  std::vector<float> mean{0.485f, 0.456f, 0.406f};  // per channel, on [0, 1] pixel values
  std::vector<float> std{0.229f, 0.224f, 0.225f};
};

// A rectangle in (possibly fractional) original-image pixels.
struct BoxF {
  double top = 0, left = 0, bottom = 0, right = 0;
};

// original image --resize--> resized --centre crop--> model input
struct ImageTransform {
  int64_t original_height = 0, original_width = 0;
  int64_t resized_height = 0, resized_width = 0;
  int64_t crop_top = 0, crop_left = 0;
  int64_t input_height = 0, input_width = 0;

  BoxF to_original(const Box& input_box) const;  // model-input pixels -> original pixels
  BoxF input_region() const;                     // the part of the original the model sees
};

struct ModelInput {
  torch::Tensor tensor;         // [C, H, W] float32, normalised with mean/std
  ImageTransform transform;
  cv::Mat original;             // CV_32FC3 RGB (or CV_32FC1 grey) in [0, 1], original size
};

// Decodes PNG, JPEG, BMP, TIFF, WebP (8/16-bit, grey/RGB/RGBA; alpha is dropped) into RGB
// CV_32FC3 with values in [0, 1]. Throws Error(BadInput) naming the file when it cannot be decoded.
cv::Mat read_image(const std::string& path);

// Applies resize / crop / normalisation to an RGB [0, 1] image. Throws Error(BadInput) when the
// image is smaller than the crop and Error(InvalidArgument) for bad options.
ModelInput preprocess(const cv::Mat& rgb, const Preprocess& options);
ModelInput load_image(const std::string& path, const Preprocess& options);

// Parses "N" or "none" for --resize/--crop.
std::optional<int64_t> parse_size_option(const std::string& text, const std::string& flag);

}  // namespace bagnet
