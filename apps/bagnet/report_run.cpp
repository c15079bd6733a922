#include "report_run.h"

#include <bagnet/report_folder.h>
#include <bagnet/sha256.h>

namespace bagnet::cli {

nlohmann::json run_identity(const Samples& samples, const nlohmann::json& report, int64_t shard, int64_t shards) {
  // One line per sample, in order: a changed, added, removed or relabelled input changes the digest.
  std::string listing;
  for (int64_t i = 0; i < samples.size(); ++i) {
    const SampleInfo info = samples.info(i);
    listing += info.source + '\t' + (info.label ? std::to_string(*info.label) : "-") + '\n';
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(listing.data());
  return bagnet::run_identity(samples.size(), sha256_hex(bytes, listing.size()), report, shard, shards);
}

}  // namespace bagnet::cli
