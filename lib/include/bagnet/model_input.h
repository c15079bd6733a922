#pragma once
// How an image becomes model input, in one place (core, no OpenCV): the input spec that model
// files store, reports record and the image code applies; and the transform from original-image
// pixels to model-input pixels that every box goes back through.
//
//   bagnet::InputSpec spec = bagnet::input_spec_of(model);         // model file's, else defaults
//   bagnet::ModelInput in = bagnet::load_image("cat.jpg", spec);   // image.h (vision)
//   bagnet::BoxF box = in.transform.to_original(map.geometry.cell_box(0, 0));
// Full program: examples/library/evidence_map.cpp.
#include <bagnet/arch.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace bagnet {

// original image --resize shorter side--> --centre crop--> --(x - mean) / std--> model input.
struct InputSpec {
  std::optional<int64_t> resize = 256;   // shorter side to this many pixels; nullopt: keep the size
  std::optional<int64_t> crop = 224;     // centre crop to a square of this side; nullopt: no crop
  int64_t channels = 3;                  // 3: RGB, 1: grey (for single-channel models)
  std::vector<float> mean{0.485f, 0.456f, 0.406f};  // per channel, on [0, 1] pixel values (ImageNet's)
  std::vector<float> std{0.229f, 0.224f, 0.225f};
};

// The defaults for a model without its own spec: resize 256, crop 224, ImageNet's mean and std for
// RGB, 0.5 / 0.5 for grey. Throws Error(InvalidArgument) for channel counts images cannot feed.
InputSpec default_input_spec(int64_t channels);

// A rectangle in (possibly fractional) original-image pixels.
struct BoxF {
  double top = 0, left = 0, bottom = 0, right = 0;
};

// Where the model input lies in the original image.
struct ImageTransform {
  int64_t original_height = 0, original_width = 0;
  int64_t resized_height = 0, resized_width = 0;
  int64_t crop_top = 0, crop_left = 0;
  int64_t input_height = 0, input_width = 0;

  BoxF to_original(const Box& input_box) const;  // model-input pixels -> original pixels
  BoxF input_region() const;                     // the part of the original the model sees
  // The transform of an input used as it is (no resize, no crop).
  static ImageTransform identity(int64_t height, int64_t width);
};

}  // namespace bagnet
