#pragma once
// The identity of a `bagnet report` run, kept as OUTDIR/run.json from before the first report on:
// which samples (count and a digest of their sources and labels, in order), which model and
// preprocessing, which settings and which shard. A rerun into the folder resumes only the same run;
// `bagnet merge` combines only shards of one run.
#include "samples.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace bagnet::cli {

// `report` is the JSON of a report made with the run's model and settings (report_to_json of a
// probe): its "model", "settings" and kind of raw maps are taken over.
nlohmann::json run_identity(const Samples& samples, const nlohmann::json& report, int64_t shard, int64_t shards);

// OUTDIR/run.json, or nothing when the folder has none (a folder from before run.json existed).
std::optional<nlohmann::json> read_run_identity(const std::filesystem::path& folder);
void write_run_identity(const std::filesystem::path& folder, const nlohmann::json& identity);

// Throws Error(InvalidArgument) naming the first difference between `old` (found in `folder`) and
// `now`, e.g. "... holds a run over 12 samples, these inputs are 13; use another -o folder".
// `compare_shard`: false for merge, whose shards differ in their index by design.
void check_same_run(const nlohmann::json& old, const nlohmann::json& now, const std::string& folder, bool compare_shard);

// The raw maps a report says it has, as compared between runs: null, or {"stride", "dense"}.
nlohmann::json maps_setting(const nlohmann::json& report);

// Throws Error(InvalidArgument) when the report `old` (found in `where`) was made with another
// model, preprocessing, settings or kind of raw maps than `now`; `hint` ends the message.
void check_same_report_kind(const nlohmann::json& old, const nlohmann::json& now, const std::string& where,
                            const std::string& hint);

}  // namespace bagnet::cli
