#include "report_run.h"

#include <bagnet/json_text.h>
#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/sha256.h>

#include <fstream>

namespace bagnet::cli {

namespace fs = std::filesystem;

nlohmann::json run_identity(const Samples& samples, const nlohmann::json& report, int64_t shard, int64_t shards) {
  // One line per sample, in order: a changed, added, removed or relabelled input changes the digest.
  std::string listing;
  for (int64_t i = 0; i < samples.size(); ++i) {
    const SampleInfo info = samples.info(i);
    listing += info.source + '\t' + (info.label ? std::to_string(*info.label) : "-") + '\n';
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(listing.data());
  nlohmann::json model = nlohmann::json::object();
  for (const char* key : {"sha256", "architecture", "preprocessing"}) model[key] = report.at("model").at(key);
  // Runs in another precision give other numbers, so they may not be resumed or merged into this one;
  // float32 runs keep the identity they had before precision could be chosen.
  if (report.at("model").value("precision", "float32") != "float32") model["precision"] = report.at("model").at("precision");
  return {{"format", "bagnet-lens report run"},
          {"version", 1},
          {"samples", samples.size()},
          {"sources_sha256", sha256_hex(bytes, listing.size())},
          {"model", model},
          {"settings", report.at("settings")},
          {"maps", maps_setting(report)},
          {"shard", {{"index", shard}, {"count", shards}}}};
}

std::optional<nlohmann::json> read_run_identity(const fs::path& folder) {
  const fs::path path = folder / "run.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  BAGNET_CHECK(in.good(), ErrorKind::BadInput, path.string(), ": cannot open");
  try {
    nlohmann::json identity = nlohmann::json::parse(in);
    for (const char* key : {"samples", "sources_sha256", "model", "settings", "shard"})
      BAGNET_CHECK(identity.contains(key), ErrorKind::BadInput, path.string(), ": no '", key, "' (not a report run)");
    return identity;
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::BadInput, path.string(), ": not JSON (", e.what(), ")");
  }
}

void write_run_identity(const fs::path& folder, const nlohmann::json& identity) {
  write_text_atomically((folder / "run.json").string(), to_json_text(identity, 2) + "\n");
}

void check_same_run(const nlohmann::json& old, const nlohmann::json& now, const std::string& folder, bool compare_shard) {
  // Resuming compares a folder with this run; merging compares a shard folder with the first one.
  const std::string here = compare_shard ? "here" : "in the first folder";
  const std::string hint = compare_shard ? "; use another -o folder" : "; merge only the shards of one run";
  BAGNET_CHECK(old["samples"] == now["samples"], ErrorKind::InvalidArgument, folder, " holds a run over ", old["samples"],
               " samples, ", compare_shard ? "these inputs are " : "the first folder's over ", now["samples"], hint);
  BAGNET_CHECK(old["sources_sha256"] == now["sources_sha256"], ErrorKind::InvalidArgument, folder, " holds a run over ",
               old["samples"], " other samples than ", here, " (same count, other files, order or labels)", hint);
  for (const char* key : {"sha256", "architecture", "preprocessing"})
    BAGNET_CHECK(old["model"][key] == now["model"][key], ErrorKind::InvalidArgument, folder,
                 " holds a run with another model or preprocessing than ", here, " (", key, " differs)", hint);
  const std::string old_precision = old["model"].value("precision", "float32"), precision = now["model"].value("precision", "float32");
  BAGNET_CHECK(old_precision == precision, ErrorKind::InvalidArgument, folder, " holds a run computed in ", old_precision,
               ", ", compare_shard ? "this run computes in " : "the first folder's in ", precision, hint);
  if (old["settings"] != now["settings"]) {
    std::string differences;
    for (const auto& [key, value] : now["settings"].items())
      if (!old["settings"].contains(key) || old["settings"][key] != value)
        differences += (differences.empty() ? "" : ", ") + key + " " +
                       (old["settings"].contains(key) ? old["settings"][key].dump() : "unset") + " there, " +
                       value.dump() + " " + here;
    fail(ErrorKind::InvalidArgument, folder, " holds a run with other settings (", differences, ")", hint);
  }
  const nlohmann::json old_maps = old.value("maps", nlohmann::json()), now_maps = now.value("maps", nlohmann::json());
  BAGNET_CHECK(old_maps == now_maps, ErrorKind::InvalidArgument, folder, " holds a run ",
               old_maps.is_null() ? std::string("without raw maps") : "with raw maps " + old_maps.dump(), ", ",
               now_maps.is_null() ? std::string("without raw maps") : "with raw maps " + now_maps.dump(), " ", here, hint);
  const auto shard_text = [](const nlohmann::json& s) { return s["index"].dump() + "/" + s["count"].dump(); };
  BAGNET_CHECK(old["shard"]["count"] == now["shard"]["count"] && (!compare_shard || old["shard"]["index"] == now["shard"]["index"]),
               ErrorKind::InvalidArgument, folder, " holds shard ", shard_text(old["shard"]),
               compare_shard ? ", this run is shard " + shard_text(now["shard"])
                             : ", the first folder is a shard of " + now["shard"]["count"].dump(), hint);
}

nlohmann::json maps_setting(const nlohmann::json& report) {
  const nlohmann::json& maps = report.value("maps", nlohmann::json());
  if (!maps.is_object()) return nullptr;
  return {{"stride", maps.at("stride")}, {"dense", maps.at("dense")}};
}

void check_same_report_kind(const nlohmann::json& old, const nlohmann::json& now, const std::string& where,
                            const std::string& hint) {
  for (const char* key : {"sha256", "architecture", "preprocessing"})
    BAGNET_CHECK(old["model"][key] == now["model"][key], ErrorKind::InvalidArgument, where,
                 " holds reports made with another model or preprocessing (", key, " differs)", hint);
  BAGNET_CHECK(old["settings"] == now["settings"], ErrorKind::InvalidArgument, where,
               " holds reports made with other settings (", old["settings"].dump(), ")", hint);
  BAGNET_CHECK(maps_setting(old) == maps_setting(now), ErrorKind::InvalidArgument, where, " holds reports ",
               maps_setting(old).is_null() ? std::string("without raw maps") : "with raw maps " + maps_setting(old).dump(),
               ", these have ",
               maps_setting(now).is_null() ? std::string("none") : maps_setting(now).dump(), hint);
}

}  // namespace bagnet::cli
