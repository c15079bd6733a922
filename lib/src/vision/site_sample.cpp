// One sample of the evidence browser: its maps as PNGs on one shared colour scale, its thumbnail,
// and its detail record (docs/evidence-browser.md, "detail").
#include "image_header.h"
#include "site_parts.h"

#include <bagnet/error.h>
#include <bagnet/json_text.h>
#include <bagnet/npy.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

namespace bagnet::detail {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct SampleMap {
  std::string role;            // predicted, true, margin, top_k
  int64_t cls = -1;            // -1 for the margin
  std::string name;
  torch::Tensor values;        // [rows, cols] float32
};

// The sample's raw maps by class, checked against the report's map description; the file is the
// one its index names, read through the folder (report_folder.h).
std::map<int64_t, torch::Tensor> read_class_maps(const json& report, const SiteDirs& dirs) {
  const json& maps = report.at("maps");
  // The file read_maps reads (it checks the report's name for it against this one).
  const std::string path =
      dirs.folder->path(report_files::maps(json_integer(report.at("image").at("index"), "report image.index")));
  const int64_t rows = json_integer(maps.at("size").at(0), "report maps.size");
  const int64_t cols = json_integer(maps.at("size").at(1), "report maps.size");
  std::map<std::string, torch::Tensor> arrays;
  for (auto& [name, tensor] : dirs.folder->read_maps(report)) arrays[name] = tensor;
  std::map<int64_t, torch::Tensor> out;
  for (const auto& c : maps.at("classes")) {
    const int64_t cls = json_integer(c, "report maps.classes[]");
    const auto it = arrays.find("class_" + std::to_string(cls));
    BAGNET_CHECK(it != arrays.end(), ErrorKind::BadInput, path, ": no array class_", cls);
    const torch::Tensor& t = it->second;
    BAGNET_CHECK(t.scalar_type() == torch::kFloat && t.dim() == 2 && t.size(0) == rows && t.size(1) == cols,
                 ErrorKind::BadInput, path, ": class_", cls, " should be float32 [", rows, ", ", cols, "]");
    out[cls] = t;
  }
  return out;
}

std::string class_name(const json& report, int64_t cls) {
  for (const auto& c : report.at("classes"))
    if (json_integer(c.at("class"), "report classes[].class") == cls) return c.at("name").get<std::string>();
  return "class " + std::to_string(cls);
}

// Predicted, true and margin first (the decision), then the other explained top-k classes.
std::vector<SampleMap> sample_maps(const json& report, const std::map<int64_t, torch::Tensor>& maps,
                                   int64_t predicted, int64_t truth) {
  auto get = [&](int64_t cls) {
    const auto it = maps.find(cls);
    BAGNET_CHECK(it != maps.end(), ErrorKind::BadInput, "sample ", report.at("image").at("index"),
                 ": the raw maps lack class ", cls);
    return it->second;
  };
  std::vector<SampleMap> out{{"predicted", predicted, class_name(report, predicted), get(predicted)}};
  if (truth >= 0 && truth != predicted) {
    out.push_back({"true", truth, class_name(report, truth), get(truth)});
    out.push_back({"margin", -1, "", get(predicted) - get(truth)});
  }
  for (const auto& [cls, values] : maps)
    if (cls != predicted && cls != truth) out.push_back({"top_k", cls, class_name(report, cls), values});
  return out;
}

// One pixel per cell (the browser scales it up without smoothing).
cv::Mat map_picture(const torch::Tensor& values, const ColorScale& scale, const Colormap& cmap) {
  const torch::Tensor v = values.contiguous();
  cv::Mat bgr(static_cast<int>(v.size(0)), static_cast<int>(v.size(1)), CV_8UC3);
  const float* p = v.data_ptr<float>();
  for (int r = 0; r < bgr.rows; ++r)
    for (int c = 0; c < bgr.cols; ++c) {
      const cv::Vec3b rgb = cmap.rgb(scale.position(p[r * bgr.cols + c]));
      bgr.at<cv::Vec3b>(r, c) = {rgb[2], rgb[1], rgb[0]};
    }
  return bgr;
}

json rounded_values(const torch::Tensor& values) {
  const torch::Tensor v = values.contiguous();
  const float* p = v.data_ptr<float>();
  json out = json::array();
  for (int64_t i = 0; i < v.numel(); ++i) out.push_back(round_significant(p[i]));
  return out;
}

// The stored original image (its name follows from the index) and a thumbnail beside it in the
// generation folder.
std::string find_image(const json& report, const SiteDirs& dirs, const std::string& stem) {
  const std::optional<std::string> image = dirs.folder->sample_files(report).image;
  BAGNET_CHECK(image.has_value(), ErrorKind::BadInput, dirs.report, ": sample ", stem, " has no image in images/ (write the "
               "report with maps, e.g. bagnet report --maps or --html)");
  return fs::path(*image).filename().string();
}

std::string write_thumbnail(const SiteDirs& dirs, const std::string& image, int64_t max_side, cv::Size& stored) {
  const std::string relative = std::string(report_files::kImagesDir) + "/" + image;
  const std::string shown = dirs.folder->path(relative);
  const std::vector<uint8_t> bytes = dirs.folder->read_file(relative, report_files::kMaxImageBytes);
  BAGNET_CHECK(!bytes.empty(), ErrorKind::BadInput, shown, ": empty file, expected the stored image");
  BAGNET_CHECK(detail::is_listed_image_format(bytes.data(), bytes.size()), ErrorKind::BadInput, shown,
               ": not a PNG or JPEG file");
  detail::check_header_size(shown, image_header_size(bytes.data(), bytes.size()));
  cv::Mat picture;
  try {
    picture = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<uint8_t*>(bytes.data())),
                           cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception&) {
    picture = cv::Mat();
  }
  BAGNET_CHECK(!picture.empty(), ErrorKind::BadInput, shown, ": cannot decode the stored image");
  stored = picture.size();
  const int side = std::max(picture.rows, picture.cols);
  if (side <= max_side) return "images/" + image;  // small enough: the image is its own thumbnail
  const double f = double(max_side) / side;
  cv::Mat small;
  cv::resize(picture, small, {}, f, f, cv::INTER_AREA);
  const std::string name = fs::path(image).stem().string() + ".jpg";
  save_image((fs::path(dirs.generation) / "thumbs" / name).string(), small);
  return dirs.name + "/thumbs/" + name;
}

// The part of the original image the model saw, in original pixels [top, left, bottom, right).
json crop_box(const json& image) {
  const auto at = [&image](const char* key, size_t axis) {
    return detail::json_number(image.at(key).at(axis), std::string("report image.") + key);
  };
  const double sy = at("original_size", 0) / at("resized_size", 0), sx = at("original_size", 1) / at("resized_size", 1);
  const double top = at("crop_offset", 0), left = at("crop_offset", 1), h = at("input_size", 0), w = at("input_size", 1);
  return {top * sy, left * sx, (top + h) * sy, (left + w) * sx};
}

}  // namespace

json build_sample(const json& report, const SiteDirs& dirs, const Colormap& cmap, const SiteOptions& options,
                  ListRow& row) {
  const json& image = report.at("image");
  const json& decision = report.at("decision");
  const json& predictions = report.at("predictions");
  row.index = json_integer(image.at("index"), "report image.index");
  const std::string stem = sample_stem(row.index);
  row.predicted = json_integer(predictions.at(0).at("class"), "report predictions[].class");
  row.truth = decision.is_object() ? json_integer(decision.at("true_class"), "report decision.true_class") : -1;
  if (decision.is_object()) {  // a report of a stranger may contradict itself; every view relies on these agreeing
    const bool correct = decision.at("correct").get<bool>();
    BAGNET_CHECK(json_integer(decision.at("predicted"), "report decision.predicted") == row.predicted &&
                     correct == (row.truth == row.predicted),
                 ErrorKind::BadInput, "report of sample ", row.index, ": its decision contradicts itself (predicted ",
                 row.predicted, ", true class ", row.truth, ", marked ", correct ? "correct" : "a mistake", ")");
  }
  row.probability = detail::json_number(predictions.at(0).at("probability"), "report predictions[].probability");
  const auto logit = [&predictions](size_t k) {
    return detail::json_number(predictions.at(k).at("logit"), "report predictions[].logit");
  };
  row.gap = predictions.size() > 1 ? logit(0) - logit(1) : 0.0;
  if (decision.is_object() && !decision.at("correct").get<bool>()) {
    row.margin = detail::json_number(decision.at("margin"), "report decision.margin");
    const json& size = decision.at("flip_set").at("size");
    row.flip = size.is_null() ? -1 : json_integer(size, "report decision.flip.size");
  }
  row.height = json_integer(image.at("original_size").at(0), "report image.original_size");
  row.width = json_integer(image.at("original_size").at(1), "report image.original_size");
  row.image = find_image(report, dirs, stem);
  cv::Size stored;
  row.thumb = write_thumbnail(dirs, row.image, options.thumbnail, stored);

  const std::vector<SampleMap> maps = sample_maps(report, read_class_maps(report, dirs), row.predicted, row.truth);
  std::vector<torch::Tensor> decisive;
  for (const auto& m : maps)
    if (m.role != "top_k") decisive.push_back(m.values);
  const ColorScale scale = make_scale(abs_percentile(decisive, options.percentile), cmap, false);
  json map_list = json::array();
  for (const auto& m : maps) {
    map_list.push_back({{"role", m.role}, {"class", m.cls < 0 ? json(nullptr) : json(m.cls)}, {"name", m.name},
                        {"file", png_data_url(map_picture(m.values, scale, cmap))}, {"values", rounded_values(m.values)}});
  }
  const json& raw = report.at("maps");
  json view = {{"image", row.image},
               {"image_size", {stored.height, stored.width}},
               {"crop_box", crop_box(image)},
               {"scale", round_significant(scale.clip)},
               {"percentile", options.percentile},
               {"layout",
                {{"rows", raw.at("size").at(0)}, {"cols", raw.at("size").at(1)}, {"stride", raw.at("stride")},
                 {"patch", raw.at("patch")}, {"first_centre", raw.at("first_centre")}, {"dense", raw.at("dense")},
                 {"input_size", image.at("input_size")}}},
               {"maps", map_list},
               {"record", "reports.jsonl"},
               {"raw", raw.at("file")}};
  return {{"image", image},           {"predictions", predictions}, {"classes", report.at("classes")},
          {"decision", decision},     {"occlusion", report.at("occlusion")}, {"view", view}};
}

}  // namespace bagnet::detail
