// Image decoding (formats, depths, channel layouts) and the resize/crop transform.
#include <bagnet/error.h>
#include <bagnet/image.h>

#include "crafted_images.h"
#include "scratch.h"

#include <doctest/doctest.h>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

using namespace bagnet;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) { return bagnet::test::scratch_folder("image") / name; }

// A BGR 8-bit test card: pixel (y, x) = (x, y, 100) in B, G, R.
cv::Mat card(int rows, int cols) {
  cv::Mat m(rows, cols, CV_8UC3);
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x), uchar(y), 100);
  return m;
}

}  // namespace

TEST_CASE("lossless formats decode to exact RGB in [0, 1]") {
  const cv::Mat bgr = card(20, 30);
  for (const std::string ext : {".png", ".bmp", ".tiff", ".webp"}) {
    CAPTURE(ext);
    const auto path = scratch("card" + ext).string();
    std::vector<int> params;
    if (ext == ".webp") params = {cv::IMWRITE_WEBP_QUALITY, 101};  // >100: lossless
    REQUIRE(cv::imwrite(path, bgr, params));
    const cv::Mat rgb = read_image(path);
    REQUIRE(rgb.type() == CV_32FC3);
    CHECK(rgb.rows == 20);
    CHECK(rgb.cols == 30);
    const cv::Vec3f p = rgb.at<cv::Vec3f>(7, 11);
    CHECK(p[0] == doctest::Approx(100 / 255.0).epsilon(1e-6));
    CHECK(p[1] == doctest::Approx(7 / 255.0).epsilon(1e-6));
    CHECK(p[2] == doctest::Approx(11 / 255.0).epsilon(1e-6));
  }
}

TEST_CASE("JPEG, 16-bit, grey and RGBA images") {
  const auto jpeg = scratch("card.jpg").string();
  REQUIRE(cv::imwrite(jpeg, card(16, 16)));
  CHECK(read_image(jpeg).at<cv::Vec3f>(5, 5)[0] == doctest::Approx(100 / 255.0).epsilon(0.05));

  cv::Mat deep(4, 4, CV_16UC3, cv::Scalar(0, 32768, 65535));
  const auto png16 = scratch("deep.png").string();
  REQUIRE(cv::imwrite(png16, deep));
  const cv::Vec3f d = read_image(png16).at<cv::Vec3f>(1, 1);
  CHECK(d[0] == doctest::Approx(1.0));
  CHECK(d[1] == doctest::Approx(32768 / 65535.0));
  CHECK(d[2] == doctest::Approx(0.0));

  cv::Mat grey(4, 4, CV_8UC1, cv::Scalar(51));
  const auto grey_path = scratch("grey.png").string();
  REQUIRE(cv::imwrite(grey_path, grey));
  const cv::Vec3f g = read_image(grey_path).at<cv::Vec3f>(2, 2);
  CHECK(g[0] == doctest::Approx(0.2));
  CHECK(g[2] == doctest::Approx(0.2));

  cv::Mat rgba(4, 4, CV_8UC4, cv::Scalar(10, 20, 30, 0));  // fully transparent: colour kept, alpha dropped
  const auto rgba_path = scratch("rgba.png").string();
  REQUIRE(cv::imwrite(rgba_path, rgba));
  const cv::Vec3f a = read_image(rgba_path).at<cv::Vec3f>(0, 0);
  CHECK(a[0] == doctest::Approx(30 / 255.0));
  CHECK(a[2] == doctest::Approx(10 / 255.0));
}

TEST_CASE("unreadable and corrupt files give one clear error") {
  auto message = [](const std::string& path) -> std::string {
    try {
      read_image(path);
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::BadInput);
      return e.what();
    }
    return "";
  };
  CHECK(message(scratch("does-not-exist.png").string()).find("cannot open") != std::string::npos);
  CHECK(message(scratch("").string()).find("directory") != std::string::npos);
  const auto text = scratch("notes.png");
  std::ofstream(text) << "not an image at all";
  CHECK(message(text.string()).find("not a PNG, JPEG, BMP, TIFF or WebP file") != std::string::npos);
  const auto truncated = scratch("truncated.png").string();
  std::vector<uchar> png;
  cv::imencode(".png", card(64, 64), png);
  std::ofstream(truncated, std::ios::binary).write(reinterpret_cast<const char*>(png.data()), 60);
  CHECK(message(truncated).find("cannot decode") != std::string::npos);
}

TEST_CASE("resize and centre crop follow torchvision and map back to the original") {
  cv::Mat image(300, 400, CV_32FC3, cv::Scalar(0.5f, 0.5f, 0.5f));
  InputSpec p;  // resize 256, crop 224
  const ModelInput in = preprocess(image, p);
  const ImageTransform& t = in.transform;
  CHECK(t.resized_height == 256);
  CHECK(t.resized_width == 341);
  CHECK(t.crop_top == 16);
  CHECK(t.crop_left == 59);  // round((341 - 224) / 2) = round(58.5)
  CHECK(in.tensor.sizes() == torch::IntArrayRef{3, 224, 224});
  CHECK(in.tensor[0][0][0].item<float>() == doctest::Approx((0.5 - 0.485) / 0.229).epsilon(1e-5));
  const BoxF box = t.to_original(Box{0, 0, 224, 224});
  CHECK(box.top == doctest::Approx(16 * 300.0 / 256));
  CHECK(box.left == doctest::Approx(59 * 400.0 / 341));
  CHECK(box.bottom == doctest::Approx(240 * 300.0 / 256));

  p.resize = std::nullopt;
  p.crop = std::nullopt;
  const ModelInput full = preprocess(image, p);
  CHECK(full.tensor.sizes() == torch::IntArrayRef{3, 300, 400});
  CHECK(full.transform.to_original(Box{8, 16, 33, 33}).left == doctest::Approx(16));

  p.crop = 320;
  CHECK_THROWS_AS(preprocess(image, p), Error);
  CHECK_THROWS_AS(parse_size_option("-3", "--crop"), Error);
  CHECK(parse_size_option("none", "--crop") == std::nullopt);
  CHECK(parse_size_option("224", "--crop") == 224);
}

TEST_CASE("single-channel models get a grey input") {
  cv::Mat image(40, 40, CV_32FC3, cv::Scalar(0.2f, 0.4f, 0.6f));  // RGB
  InputSpec p;
  p.resize = std::nullopt;
  p.crop = 32;
  p.channels = 1;
  p.mean = {0.5f};
  p.std = {0.5f};
  const ModelInput in = preprocess(image, p);
  CHECK(in.tensor.sizes() == torch::IntArrayRef{1, 32, 32});
  const double grey = 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6;
  CHECK(in.tensor[0][3][3].item<float>() == doctest::Approx((grey - 0.5) / 0.5).epsilon(1e-4));
}

namespace {

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::optional<ImageSize> header_of(const std::string& bytes) {
  return image_header_size(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// The message of the Error that `f` throws, after checking its kind; "" when nothing is thrown.
std::string error_of(const std::function<void()>& f, ErrorKind kind = ErrorKind::BadInput) {
  try {
    f();
  } catch (const Error& e) {
    CHECK(e.kind() == kind);
    return e.what();
  }
  return "";
}

// Restores the process-wide limit when a test case ends, whatever it set.
struct LimitGuard {
  ~LimitGuard() { set_max_image_pixels(kDefaultMaxImagePixels); }
};

// Headers claiming 30000 x 30000 (60000 x 50000 for JPEG: 16-bit sizes), by file name.
std::vector<std::pair<std::string, std::string>> crafted_huge() {
  using namespace bagnet::test;
  return {{"huge.png", crafted_png(30000, 30000)},
          {"huge.jpg", crafted_jpeg(60000, 50000)},
          {"huge.bmp", crafted_bmp(30000, -30000)},
          {"huge.webp", crafted_webp(30000, 30000)},
          {"huge-le.tiff", crafted_tiff(30000, 30000, false)},
          {"huge-be.tiff", crafted_tiff(30000, 30000, true)}};
}

// Real small images of every format (written by OpenCV), by file name.
std::vector<std::string> real_small_images() {
  const cv::Mat bgr = card(20, 30);
  std::vector<std::string> names;
  for (const std::string name : {"small.png", "small.jpg", "small.bmp", "small.tiff", "small-lossless.webp",
                                 "small-lossy.webp"}) {
    std::vector<int> params;
    if (name == "small-lossless.webp") params = {cv::IMWRITE_WEBP_QUALITY, 101};
    REQUIRE(cv::imwrite(scratch(name).string(), bgr, params));
    names.push_back(name);
  }
  return names;
}

}  // namespace

TEST_CASE("formats OpenCV reads but bagnet-lens does not list are refused before decoding") {
  // Headers of 30000 x 30000 images in formats whose size read_image_header_size does not read.
  const std::vector<std::pair<std::string, std::string>> files = {
      {"huge-ppm.png", "P6\n30000 30000\n255\n" + std::string(64, '\0')},
      {"huge-pgm.png", "P5\n30000 30000\n255\n" + std::string(64, '\0')},
      {"huge-pfm.png", "PF\n30000 30000\n-1.0\n" + std::string(64, '\0')},
      {"huge-hdr.png", "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 30000 +X 30000\n" + std::string(64, '\0')},
      {"huge-sun.png", std::string("\x59\xa6\x6a\x95\x00\x00\x75\x30\x00\x00\x75\x30\x00\x00\x00\x18", 16) +
                           std::string(64, '\0')}};
  const auto temporaries = [] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
      n += e.path().filename().string().rfind("__opencv_temp", 0) == 0;
    return n;
  };
  const int before = temporaries();
  for (const auto& file : files) {
    CAPTURE(file.first);
    const auto path = scratch(file.first).string();
    write_bytes(path, file.second);
    const std::string message = error_of([&] { read_image(path); });
    CHECK(message == path + ": not a PNG, JPEG, BMP, TIFF or WebP file (other formats, e.g. PPM, HDR or Sun raster, are "
                            "not read)");
  }
  CHECK(temporaries() == before);
}

TEST_CASE("headers claiming huge images are refused before decoding") {
  for (const auto& file : crafted_huge()) {
    const std::string& name = file.first;
    const std::string& bytes = file.second;
    CAPTURE(name);
    const auto path = scratch(name).string();
    write_bytes(path, bytes);
    const auto size = read_image_header_size(path);
    REQUIRE(size);
    CHECK(size->width == (name == "huge.jpg" ? 60000 : 30000));
    CHECK(size->height == (name == "huge.jpg" ? 50000 : 30000));
    const auto start = std::chrono::steady_clock::now();
    const std::string message = error_of([&] { read_image(path); });
    CHECK((std::chrono::steady_clock::now() - start < std::chrono::milliseconds(500)));  // decoding: seconds
    CHECK(message.rfind(path + ": ", 0) == 0);
    CHECK(message.find(" pixels (") != std::string::npos);
    CHECK(message.find("is more than the limit of 100 megapixels (raise it with set_max_image_pixels)") !=
          std::string::npos);
    CHECK(error_of([&] { check_image_size(path); }) == message);
    CHECK(error_of([&] { load_image(path, InputSpec{}); }) == message);
  }
  const auto png = scratch("huge.png").string();
  CHECK(error_of([&] { read_image(png); }) ==
        png + ": 30000 x 30000 pixels (900 megapixels) is more than the limit of 100 megapixels (raise it with "
              "set_max_image_pixels)");
}

TEST_CASE("a JPEG frame header after more than a MiB of metadata, a TIFF directory after the pixels") {
  // 20 APP1 segments of 64 KiB: the frame header is beyond the MiB read for the header.
  const auto jpeg = scratch("late-frame.jpg").string();
  write_bytes(jpeg, bagnet::test::crafted_jpeg(60000, 50000, 20, 65000));
  CHECK_FALSE(read_image_header_size(jpeg));
  CHECK(error_of([&] { read_image(jpeg); }).find("60000 x 50000 pixels") != std::string::npos);
  // libtiff's usual layout: the directory at the end, here beyond the first MiB.
  for (const bool big_endian : {false, true}) {
    const auto tiff = scratch(big_endian ? "late-be.tiff" : "late-le.tiff").string();
    write_bytes(tiff, bagnet::test::crafted_tiff(30000, 30000, big_endian, 3u << 20));
    const auto size = read_image_header_size(tiff);
    REQUIRE(size);
    CHECK(size->width == 30000);
    CHECK(error_of([&] { read_image(tiff); }).find("30000 x 30000 pixels") != std::string::npos);
  }
}

TEST_CASE("headers of real images state their size") {
  for (const auto& name : real_small_images()) {
    CAPTURE(name);
    const auto size = read_image_header_size(scratch(name).string());
    REQUIRE(size);
    CHECK(size->width == 30);
    CHECK(size->height == 20);
    const cv::Mat decoded = read_image(scratch(name).string());
    CHECK(decoded.cols == 30);
    CHECK(decoded.rows == 20);
  }
  CHECK(header_of(bagnet::test::crafted_bmp(30, 20))->height == 20);  // bottom-up
  CHECK_FALSE(header_of("not an image at all"));
  CHECK_FALSE(header_of(""));
  CHECK_THROWS_AS(read_image_header_size(scratch("does-not-exist.png").string()), Error);
}

TEST_CASE("the image size limit is process-wide and counts pixels") {
  LimitGuard restore;
  CHECK(max_image_pixels() == kDefaultMaxImagePixels);
  const auto path = scratch("card-limit.png").string();
  REQUIRE(cv::imwrite(path, card(20, 30)));
  set_max_image_pixels(600);  // exactly 20 x 30
  CHECK(read_image(path).rows == 20);
  set_max_image_pixels(599);
  const std::string message = error_of([&] { read_image(path); });
  CHECK(message.find("30 x 20 pixels (0.0006 megapixels) is more than the limit of 0.000599 megapixels") !=
        std::string::npos);
  CHECK(error_of([] { set_max_image_pixels(0); }, ErrorKind::InvalidArgument).find("positive") != std::string::npos);
  CHECK(error_of([] { set_max_image_pixels(-5); }, ErrorKind::InvalidArgument) != "");
  CHECK(max_image_pixels() == 599);
  set_max_image_pixels(int64_t(1) << 62);  // no overflow for the largest sizes a header can state
  CHECK(header_of(bagnet::test::crafted_tiff(0xFFFFFFFFu, 0xFFFF, true))->width == 0xFFFFFFFFu);
  const auto huge = scratch("huge-raised.png");
  write_bytes(huge, bagnet::test::crafted_png(30000, 30000));
  CHECK(error_of([&] { check_image_size(huge.string()); }) == "");
}

TEST_CASE("truncated and corrupted headers are unknown or a clean error, never a crash") {
  LimitGuard restore;
  set_max_image_pixels(1'000'000);  // what passes the check is decoded quickly
  std::vector<std::pair<std::string, std::string>> files = crafted_huge();
  for (const auto& name : real_small_images()) files.emplace_back(name, file_bytes(scratch(name)));
  std::mt19937 random(13);
  const auto fuzz = scratch("fuzz.bin").string();
  for (const auto& file : files) {
    const std::string& name = file.first;
    const std::string& bytes = file.second;
    CAPTURE(name);
    const bool crafted = name.rfind("huge", 0) == 0;
    for (size_t n = 0; n <= bytes.size(); ++n) {
      const std::string prefix = bytes.substr(0, n);
      const auto size = header_of(prefix);
      if (size) CHECK((size->width >= 0 && size->height >= 0));
      if (!crafted && n > 64) continue;  // decoding every prefix of a real file only shows OpenCV's messages
      write_bytes(fuzz, prefix);
      CHECK_NOTHROW(error_of([&] { read_image(fuzz); }));  // a bagnet::Error or an image
    }
    const size_t header = std::min<size_t>(bytes.size(), 64);
    for (int i = 0; i < 1000; ++i) {
      std::string flipped = bytes;
      flipped[random() % header] = static_cast<char>(random() & 0xFF);
      const auto size = header_of(flipped);
      if (size) CHECK((size->width >= 0 && size->height >= 0));
      if (!crafted) continue;
      write_bytes(fuzz, flipped);
      CHECK_NOTHROW(error_of([&] { read_image(fuzz); }));
    }
  }
}
