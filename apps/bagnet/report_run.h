#pragma once
// The identity of a `bagnet report` run over these inputs (report_folder.h keeps it as run.json):
// which samples (count and a digest of their sources and labels, in order), which model and
// preprocessing, which settings and which shard. A rerun into the folder resumes only the same run;
// `bagnet merge` combines only shards of one run.
#include "samples.h"

#include <nlohmann/json.hpp>

namespace bagnet::cli {

// `report` is the JSON of a report made with the run's model and settings (report_to_json of a
// probe): its "model", "settings" and kind of raw maps are taken over.
nlohmann::json run_identity(const Samples& samples, const nlohmann::json& report, int64_t shard, int64_t shards);

}  // namespace bagnet::cli
