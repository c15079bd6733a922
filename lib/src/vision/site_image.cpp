// Files of the evidence browser: sample images, PNG/JPEG writing, file stems, short numbers.
#include "site_parts.h"

#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/json_text.h>
#include <bagnet/report_folder.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace bagnet {

namespace detail {

std::string png_data_url(const cv::Mat& bgr) {
  std::vector<uchar> bytes;
  BAGNET_CHECK(cv::imencode(".png", bgr, bytes, {cv::IMWRITE_PNG_COMPRESSION, 9}), ErrorKind::Runtime,
               "map picture: PNG encoding failed");
  static const char* const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out = "data:image/png;base64,";
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t n = (uint32_t(bytes[i]) << 16) | (i + 1 < bytes.size() ? uint32_t(bytes[i + 1]) << 8 : 0) |
                       (i + 2 < bytes.size() ? uint32_t(bytes[i + 2]) : 0);
    out += digits[(n >> 18) & 63];
    out += digits[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? digits[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? digits[n & 63] : '=';
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

double json_number(const nlohmann::json& value, const std::string& what) {
  if (value.is_number()) {
    const double v = value.get<double>();
    if (std::isfinite(v)) return v;
  }
  fail(ErrorKind::BadInput, what, ": expected a finite number, got ", to_json_text(value).substr(0, 40));
}

double round_significant(double value, int digits) {
  if (value == 0 || !std::isfinite(value)) return std::isfinite(value) ? value : 0.0;
  char text[32];
  std::snprintf(text, sizeof text, "%.*g", digits, value);
  return std::strtod(text, nullptr);
}

}  // namespace detail

std::string sample_stem(int64_t index) { return report_files::stem(index); }

std::string save_sample_image(const cv::Mat& rgb, const std::string& dir, int64_t index) {
  BAGNET_CHECK(!rgb.empty() && (rgb.type() == CV_32FC3 || rgb.type() == CV_32FC1), ErrorKind::InvalidArgument,
               "sample image: expected a CV_32FC3 RGB or CV_32FC1 grey image, got type ", rgb.type());
  constexpr int kLossless = 128, kLargest = 512;  // small images stay exact; photos become JPEGs
  cv::Mat bytes;
  rgb.convertTo(bytes, rgb.channels() == 3 ? CV_8UC3 : CV_8UC1, 255.0);
  if (bytes.channels() == 3) cv::cvtColor(bytes, bytes, cv::COLOR_RGB2BGR);
  const int side = std::max(bytes.rows, bytes.cols);
  if (side > kLargest) {
    const double f = double(kLargest) / side;
    cv::resize(bytes, bytes, {}, f, f, cv::INTER_AREA);
  }
  const std::string name = sample_stem(index) + (side <= kLossless ? ".png" : ".jpg");
  save_image((std::filesystem::path(dir) / name).string(), bytes);
  return name;
}

}  // namespace bagnet
