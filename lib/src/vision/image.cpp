#include "image_header.h"

#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/image.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace bagnet {

cv::Mat read_image(const std::string& path) {
  std::error_code ec;
  BAGNET_CHECK(!std::filesystem::is_directory(path, ec), ErrorKind::BadInput, path, ": is a directory, expected an image");
  // The size limit is checked on the header before the file is read whole or decoded.
  const std::optional<ImageSize> header = read_image_header_size(path);
  detail::check_header_size(path, header);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::BadInput, path, ": cannot open (", std::strerror(errno), ")");
  std::vector<uchar> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BAGNET_CHECK(!bytes.empty(), ErrorKind::BadInput, path, ": empty file, expected an image");
  BAGNET_CHECK(detail::is_listed_image_format(bytes.data(), bytes.size()), ErrorKind::BadInput, path,
               ": not a PNG, JPEG, BMP, TIFF or WebP file (other formats, e.g. PPM, HDR or Sun raster, are not read)");
  // A JPEG frame header after more than the MiB read for the header (a huge EXIF block).
  if (!header) detail::check_header_size(path, image_header_size(bytes.data(), bytes.size()));
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception&) {
    decoded = cv::Mat();
  }
  BAGNET_CHECK(!decoded.empty(), ErrorKind::BadInput, path,
               ": cannot decode as an image (corrupt, or not PNG/JPEG/BMP/TIFF/WebP)");
  double scale = 1.0;
  switch (decoded.depth()) {
    case CV_8U: scale = 1.0 / 255.0; break;
    case CV_16U: scale = 1.0 / 65535.0; break;
    case CV_32F: scale = 1.0; break;
    default: fail(ErrorKind::BadInput, path, ": unsupported pixel depth (expected 8 or 16 bit)");
  }
  cv::Mat rgb;
  switch (decoded.channels()) {
    case 1: cv::cvtColor(decoded, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(decoded, rgb, cv::COLOR_BGRA2RGB); break;
    default: fail(ErrorKind::BadInput, path, ": unsupported channel count ", decoded.channels());
  }
  // Divide in float32 exactly like torchvision's ToTensor (x / 255), not multiply by 1/255.
  cv::Mat out;
  rgb.convertTo(out, CV_32F);
  if (scale != 1.0) out /= static_cast<float>(1.0 / scale);
  return out;
}

std::optional<int64_t> parse_size_option(const std::string& text, const std::string& flag) {
  if (text == "none") return std::nullopt;
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size() && v >= 1 && v <= 65536) return v;
  } catch (const std::exception&) {
  }
  fail(ErrorKind::InvalidArgument, flag, " expects a size in pixels (1..65536) or 'none', got '", text, "'");
}

ModelInput preprocess(const cv::Mat& image, const InputSpec& options) {
  BAGNET_CHECK(!image.empty() && image.type() == CV_32FC3, ErrorKind::InvalidArgument,
               "preprocess: expected an RGB float image (CV_32FC3)");
  BAGNET_CHECK(options.channels == 1 || options.channels == 3, ErrorKind::InvalidArgument,
               "preprocess: channels must be 1 or 3, got ", options.channels);
  BAGNET_CHECK(static_cast<int64_t>(options.mean.size()) == options.channels &&
                   static_cast<int64_t>(options.std.size()) == options.channels,
               ErrorKind::InvalidArgument, "preprocess: mean/std need ", options.channels, " values");
  ModelInput result;
  ImageTransform& t = result.transform;
  t.original_height = image.rows;
  t.original_width = image.cols;
  cv::Mat resized = image;
  t.resized_height = image.rows;
  t.resized_width = image.cols;
  if (options.resize) {
    // torchvision Resize(N): the shorter side becomes N, the longer keeps the aspect (truncated).
    const int64_t n = *options.resize;
    if (image.rows <= image.cols) {
      t.resized_height = n;
      t.resized_width = static_cast<int64_t>(double(n) * image.cols / image.rows);
    } else {
      t.resized_width = n;
      t.resized_height = static_cast<int64_t>(double(n) * image.rows / image.cols);
    }
    t.resized_height = std::max<int64_t>(t.resized_height, 1);
    t.resized_width = std::max<int64_t>(t.resized_width, 1);
    if (t.resized_height != image.rows || t.resized_width != image.cols) {
      const bool shrinking = t.resized_height < image.rows;
      // Area averaging when shrinking avoids aliasing (like PIL's antialiased resize).
      cv::resize(image, resized, cv::Size(int(t.resized_width), int(t.resized_height)), 0, 0,
                 shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
    }
  }
  cv::Mat cropped = resized;
  t.input_height = t.resized_height;
  t.input_width = t.resized_width;
  if (options.crop) {
    const int64_t c = *options.crop;
    BAGNET_CHECK(c <= t.resized_height && c <= t.resized_width, ErrorKind::BadInput, "image is ",
                 t.resized_height, "x", t.resized_width, " after resizing, smaller than the ", c, "x", c,
                 " crop (set InputSpec::resize larger, or InputSpec::crop to none)");
    t.crop_top = static_cast<int64_t>(std::lround((t.resized_height - c) / 2.0));
    t.crop_left = static_cast<int64_t>(std::lround((t.resized_width - c) / 2.0));
    cropped = resized(cv::Rect(int(t.crop_left), int(t.crop_top), int(c), int(c)));
    t.input_height = t.input_width = c;
  }
  cv::Mat pixels = cropped.clone();
  if (options.channels == 1) {
    cv::Mat grey;
    cv::cvtColor(pixels, grey, cv::COLOR_RGB2GRAY);
    pixels = grey;
  }
  torch::Tensor hwc = torch::from_blob(pixels.data, {pixels.rows, pixels.cols, options.channels}, torch::kFloat);
  torch::Tensor chw = hwc.permute({2, 0, 1}).contiguous();
  const auto mean = torch::tensor(options.mean, torch::kFloat).view({-1, 1, 1});
  const auto std = torch::tensor(options.std, torch::kFloat).view({-1, 1, 1});
  result.tensor = (chw - mean) / std;
  if (options.channels == 1) {
    cv::Mat grey;
    cv::cvtColor(image, grey, cv::COLOR_RGB2GRAY);
    result.original = grey;
  } else {
    result.original = image;
  }
  return result;
}

ModelInput load_image(const std::string& path, const InputSpec& options) {
  try {
    return preprocess(read_image(path), options);
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.rfind(path, 0) == 0) throw;
    throw Error(e.kind(), path + ": " + message);
  }
}

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> known{".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"};
  return known;
}

bool has_image_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  const auto& known = image_extensions();
  return std::find(known.begin(), known.end(), ext) != known.end();
}

void save_image(const std::string& path, const cv::Mat& bgr) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  std::vector<int> params;
  if (ext == ".png") params = {cv::IMWRITE_PNG_COMPRESSION, 9};
  else if (ext == ".jpg" || ext == ".jpeg") params = {cv::IMWRITE_JPEG_QUALITY, 90};
  else fail(ErrorKind::InvalidArgument, path, ": pictures are written as .png or .jpg");
  std::vector<uchar> bytes;
  BAGNET_CHECK(cv::imencode(ext, bgr, bytes, params), ErrorKind::Runtime, path, ": image encoding failed");
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  });
}

}  // namespace bagnet
