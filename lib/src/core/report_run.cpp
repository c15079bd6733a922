// The identity of a report run (OUTDIR/run.json) and the comparisons that keep resumes and merges
// to one run (report_folder.h).
#include <bagnet/error.h>
#include <bagnet/report_folder.h>

namespace bagnet {

nlohmann::json run_identity(int64_t samples, const std::string& sources_sha256, const nlohmann::json& report,
                            int64_t shard, int64_t shards) {
  nlohmann::json model = nlohmann::json::object();
  for (const char* key : {"sha256", "architecture", "preprocessing"}) model[key] = report.at("model").at(key);
  // Runs in another precision give other numbers, so they may not be resumed or merged into this one;
  // float32 runs keep the identity they had before precision could be chosen.
  if (report.at("model").value("precision", "float32") != "float32") model["precision"] = report.at("model").at("precision");
  return {{"format", "bagnet-lens report run"},
          {"version", 1},
          {"samples", samples},
          {"sources_sha256", sources_sha256},
          {"model", model},
          {"settings", report.at("settings")},
          {"maps", maps_setting(report)},
          {"shard", {{"index", shard}, {"count", shards}}}};
}

void check_same_run(const nlohmann::json& old_run, const nlohmann::json& now_run, const std::string& folder,
                    bool compare_shard) {
  // Copies: a stranger's run.json may lack any field, and operator[] on a copy reads it as null.
  nlohmann::json old = old_run, now = now_run;
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
  const nlohmann::json maps = report.is_object() ? report.value("maps", nlohmann::json()) : nlohmann::json();
  if (!maps.is_object()) return nullptr;
  return {{"stride", maps.at("stride")}, {"dense", maps.at("dense")}};
}

void check_same_report_kind(const nlohmann::json& old, const nlohmann::json& now, const std::string& where,
                            const std::string& hint) {
  // Called for every line of a merge: only the small parts compared are copied, so that a field a
  // stranger's report lacks reads as null (operator[] on a const object would be undefined).
  const auto part = [](const nlohmann::json& report, const char* key) {
    return report.is_object() && report.contains(key) ? report[key] : nlohmann::json();
  };
  nlohmann::json old_model = part(old, "model"), now_model = part(now, "model");
  for (const char* key : {"sha256", "architecture", "preprocessing"})
    BAGNET_CHECK(old_model[key] == now_model[key], ErrorKind::InvalidArgument, where,
                 " holds reports made with another model or preprocessing (", key, " differs)", hint);
  BAGNET_CHECK(part(old, "settings") == part(now, "settings"), ErrorKind::InvalidArgument, where,
               " holds reports made with other settings (", part(old, "settings").dump(), ")", hint);
  BAGNET_CHECK(maps_setting(old) == maps_setting(now), ErrorKind::InvalidArgument, where, " holds reports ",
               maps_setting(old).is_null() ? std::string("without raw maps") : "with raw maps " + maps_setting(old).dump(),
               ", these have ",
               maps_setting(now).is_null() ? std::string("none") : maps_setting(now).dump(), hint);
}

}  // namespace bagnet
