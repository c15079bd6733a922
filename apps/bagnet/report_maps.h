#pragma once
// `bagnet report --maps`: each sample's raw maps (OUTDIR/maps/NNNNNN.npz) and image
// (OUTDIR/images/NNNNNN.png|jpg) beside its report, for NumPy users and the evidence browser.
#include <bagnet/image.h>
#include <bagnet/model.h>
#include <bagnet/report.h>
#include <bagnet/report_folder.h>

#include <string>

namespace bagnet::cli {

struct MapRequest {
  bool enabled = false;
  int64_t stride = 0;     // a stride of map_strides(arch)
  bool dense = false;     // false: the native map (stride == the architecture's total stride)
};

// The description a probe report carries so that runs with other maps are told apart.
MapFiles planned_maps(const MapRequest& request, const Arch& arch);

// Writes the maps of `report`'s explained classes (computing dense ones when asked) and the
// sample's image; returns what report.maps should say. Files are complete before this returns,
// so a report line is only ever written after its files.
MapFiles write_sample_maps(ReportFolder& folder, const Report& report, BagNet& net, const ModelInput& input,
                           const MapRequest& request);

}  // namespace bagnet::cli
