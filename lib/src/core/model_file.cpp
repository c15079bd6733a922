#include <bagnet/json_text.h>
#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/model_file.h>

#include "pickle_writer.h"
#include "zip_writer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace bagnet {
namespace {

using nlohmann::json;

void check_meta(const ModelMeta& m) {
  validate_arch(m.arch);
  BAGNET_CHECK(static_cast<int64_t>(m.class_names.size()) == m.arch.num_classes, ErrorKind::InvalidArgument,
               "model metadata: ", m.class_names.size(), " class names for ", m.arch.num_classes, " classes");
  BAGNET_CHECK(m.input.channels == m.arch.in_channels, ErrorKind::InvalidArgument, "model metadata: input has ",
               m.input.channels, " channels, the architecture ", m.arch.in_channels);
  BAGNET_CHECK(static_cast<int64_t>(m.input.mean.size()) == m.input.channels &&
                   static_cast<int64_t>(m.input.std.size()) == m.input.channels,
               ErrorKind::InvalidArgument, "model metadata: mean/std need ", m.input.channels, " values each");
  for (float s : m.input.std)
    BAGNET_CHECK(s > 0, ErrorKind::InvalidArgument, "model metadata: std values must be positive");
  for (const auto& size : {m.input.resize, m.input.crop})
    BAGNET_CHECK(!size || *size >= 1, ErrorKind::InvalidArgument, "model metadata: sizes must be >= 1");
}

json optional_size(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }

}  // namespace

std::string meta_to_json(const ModelMeta& m) {
  check_meta(m);
  json j;
  j["format"] = "bagnet-lens model";
  j["version"] = 1;
  j["architecture"] = arch_to_spec(m.arch);
  j["receptive_field"] = receptive_field(m.arch);
  j["stride"] = total_stride(m.arch);
  j["classes"] = m.class_names;
  j["input"] = {{"channels", m.input.channels},
                {"resize", optional_size(m.input.resize)},
                {"crop", optional_size(m.input.crop)},
                {"mean", m.input.mean},
                {"std", m.input.std}};
  j["training"] = json::parse(m.training.empty() ? "{}" : m.training);
  if (!m.resume.empty()) j["resume"] = json::parse(m.resume);
  return to_json_text(j, 1);  // class names from a labels file may be any bytes
}

ModelMeta meta_from_json(const std::string& text, const std::string& what) {
  ModelMeta m;
  try {
    const json j = json::parse(text);
    BAGNET_CHECK(j.at("format") == "bagnet-lens model", ErrorKind::BadInput, what, ": unknown model format ",
                 j.at("format").dump());
    BAGNET_CHECK(json_integer(j.at("version"), what + ": version") == 1, ErrorKind::BadInput, what, ": model format version ",
                 j.at("version").dump(), " is newer than this program (1)");
    m.arch = parse_arch(j.at("architecture").get<std::string>());
    m.class_names = j.at("classes").get<std::vector<std::string>>();
    const json& in = j.at("input");
    // Checked conversions: a number out of range would be undefined behaviour (fuzz finding).
    m.input.channels = json_integer(in.at("channels"), what + ": input.channels");
    m.input.resize = in.at("resize").is_null() ? std::nullopt : std::optional<int64_t>(json_integer(in.at("resize"), what + ": input.resize"));
    m.input.crop = in.at("crop").is_null() ? std::nullopt : std::optional<int64_t>(json_integer(in.at("crop"), what + ": input.crop"));
    m.input.mean.clear();
    m.input.std.clear();
    for (const auto& v : in.at("mean")) m.input.mean.push_back(json_float(v, what + ": input.mean"));
    for (const auto& v : in.at("std")) m.input.std.push_back(json_float(v, what + ": input.std"));
    m.training = j.value("training", json::object()).dump();
    if (j.contains("resume")) m.resume = j.at("resume").dump();
  } catch (const json::exception& e) {
    fail(ErrorKind::BadInput, what, ": malformed model metadata (", e.what(), ")");
  } catch (const Error& e) {
    if (std::string(e.what()).rfind(what, 0) == 0) throw;
    fail(ErrorKind::BadInput, what, ": malformed model metadata (", e.what(), ")");
  }
  try {
    check_meta(m);
  } catch (const Error& e) {
    fail(ErrorKind::BadInput, what, ": ", e.what());
  }
  return m;
}

void save_model_file(const std::string& path, const StateDict& weights, const ModelMeta& meta, const StateDict& extra) {
  BAGNET_CHECK(!weights.empty(), ErrorKind::InvalidArgument, "save_model_file: no weights");
  const std::string meta_json = meta_to_json(meta);
  std::vector<detail::PickleEntry> entries{{kModelMetaKey, meta_json, nullptr}, {"state_dict", "", &weights}};
  if (!extra.empty()) entries.push_back({"training_state", "", &extra});
  std::vector<torch::Tensor> storages;
  const std::string pickle = detail::pickle_dict(entries, storages);
  write_file_atomically(path, [&](std::ostream& out) {
    detail::ZipWriter zip(out);
    // The folder name is free in torch.save's layout; readers find data.pkl under any folder.
    zip.add("archive/data.pkl", pickle);
    zip.add("archive/byteorder", "little");
    for (size_t i = 0; i < storages.size(); ++i)
      zip.add("archive/data/" + std::to_string(i), storages[i].data_ptr(),
              static_cast<uint64_t>(storages[i].numel()) * storages[i].element_size());
    zip.add("archive/version", "3\n");
    zip.finish();
  });
}

std::optional<ModelMeta> model_meta(const Checkpoint& checkpoint, const std::string& what) {
  for (const auto& [key, value] : checkpoint.metadata)
    if (key == kModelMetaKey) return meta_from_json(value, what);
  return std::nullopt;
}

}  // namespace bagnet
