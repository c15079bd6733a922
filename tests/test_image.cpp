// Image decoding (formats, depths, channel layouts) and the resize/crop transform.
#include <bagnet/error.h>
#include <bagnet/image.h>

#include "scratch.h"

#include <doctest/doctest.h>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

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
  CHECK(message(text.string()).find("cannot decode") != std::string::npos);
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
