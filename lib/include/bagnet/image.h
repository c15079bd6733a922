#pragma once
// Image decoding and preprocessing (OpenCV part). Keeps the transform from the original image to
// the model input so that evidence boxes can be drawn on the original pixels.
//
//   bagnet::InputSpec spec;                               // resize 256, centre crop 224, ImageNet mean/std
//   bagnet::ModelInput in = bagnet::load_image("cat.jpg", spec);
//   in.tensor;                                            // [3, 224, 224] float32, normalised
//   bagnet::BoxF box = in.transform.to_original(map.geometry.cell_box(0, 0));
// Full program: examples/library/evidence_map.cpp. InputSpec and ImageTransform: model_input.h.
#include <bagnet/arch.h>
#include <bagnet/model_input.h>

#include <opencv2/core.hpp>
#include <torch/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bagnet {


struct ModelInput {
  torch::Tensor tensor;         // [C, H, W] float32, normalised with mean/std
  ImageTransform transform;
  cv::Mat original;             // CV_32FC3 RGB (or CV_32FC1 grey) in [0, 1], original size
};

// Decodes PNG, JPEG, BMP, TIFF, WebP (8/16-bit, grey/RGB/RGBA; alpha is dropped) into RGB
// CV_32FC3 with values in [0, 1]. Throws Error(BadInput) naming the file when it cannot be decoded,
// or when its header states more pixels than max_image_pixels() (checked before decoding).
cv::Mat read_image(const std::string& path);

// Width and height as an image file's header states them.
struct ImageSize {
  int64_t width = 0, height = 0;
};

// The size in the header of a PNG, JPEG, BMP, WebP or TIFF file, found without decoding; nullopt
// for another format or a header that cannot be parsed (decoding then decides). The bytes are
// untrusted: every offset is bounds-checked and nothing is allocated from their values.
std::optional<ImageSize> image_header_size(const uint8_t* bytes, size_t size);
// The same from a file, reading at most its first MiB (and a TIFF's first directory, often written
// after the pixels, where the header points). Throws Error(BadInput) when it cannot be opened.
std::optional<ImageSize> read_image_header_size(const std::string& path);

// Default of max_image_pixels(): 100 megapixels, a 10000 x 10000 photo. Decoding takes 3 bytes per
// pixel (8-bit BGR) and then 12 (float32 RGB), so this bounds one image at about 1.5 GB; a PNG of a
// few megabytes can claim 30000 x 30000 (13.5 GB), and OpenCV's own limit (2^30 pixels) is 16 GB.
constexpr int64_t kDefaultMaxImagePixels = 100'000'000;
// The most pixels an image may have to be decoded (read_image, datasets, the evidence browser).
// Process-wide, set once at start-up (thread-safe). Throws Error(InvalidArgument) for pixels <= 0.
void set_max_image_pixels(int64_t pixels);
int64_t max_image_pixels();
// Throws Error(BadInput) naming `path` when its header states more than max_image_pixels(); an
// unknown header passes (see read_image_header_size).
void check_image_size(const std::string& path);

// Applies resize / crop / normalisation to an RGB [0, 1] image. Throws Error(BadInput) when the
// image is smaller than the crop and Error(InvalidArgument) for bad options.
ModelInput preprocess(const cv::Mat& rgb, const InputSpec& options);
ModelInput load_image(const std::string& path, const InputSpec& options);

// Writes an 8-bit BGR (or grey) picture as PNG (maximum compression) or JPEG (quality 90), by the
// extension of `path` (.png, .jpg, .jpeg), atomically. Throws Error(InvalidArgument) for another
// extension, Error(Runtime) when encoding fails and Error(BadInput) when the file cannot be written.
void save_image(const std::string& path, const cv::Mat& bgr);

// True for the file extensions decoded here: .png .jpg .jpeg .bmp .tif .tiff .webp (any case).
bool has_image_extension(const std::string& path);
// Those extensions, lowercase with the dot.
const std::vector<std::string>& image_extensions();

// Parses "N" or "none" for --resize/--crop.
std::optional<int64_t> parse_size_option(const std::string& text, const std::string& flag);

}  // namespace bagnet
