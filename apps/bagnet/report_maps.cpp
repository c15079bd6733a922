#include "report_maps.h"

#include <bagnet/error.h>
#include <bagnet/evidence.h>
#include <bagnet/npy.h>
#include <bagnet/site.h>

#include <filesystem>

namespace bagnet::cli {

namespace fs = std::filesystem;

MapFiles planned_maps(const MapRequest& request, const Arch& arch) {
  MapFiles m;
  m.stride = request.stride;
  m.dense = request.dense;
  m.patch = receptive_field(arch);
  // Native cell i sees input rows [stride*i, stride*i + q); dense cell i is centred on pixel stride*i.
  m.first_centre = request.dense ? 0.5 : m.patch / 2.0;
  return m;
}

MapFiles write_sample_maps(ReportFolder& folder, const Report& report, BagNet& net, const ModelInput& input,
                           const MapRequest& request) {
  MapFiles files = planned_maps(request, net->arch());
  for (const auto& c : report.classes) files.classes.push_back(c.cls);
  torch::Tensor maps = report.class_maps;  // [K, H', W'], the native maps
  if (request.dense) {
    DenseOptions options;
    options.stride = request.stride;
    options.classes = files.classes;
    maps = compute_dense_evidence(net, input.tensor.unsqueeze(0), options).logits[0];
  }
  BAGNET_CHECK(maps.defined() && maps.size(0) == static_cast<int64_t>(files.classes.size()), ErrorKind::Runtime,
               "report of sample ", report.image.index, ": ", files.classes.size(), " explained classes but ",
               maps.defined() ? maps.size(0) : 0, " maps");
  files.rows = maps.size(1);
  files.cols = maps.size(2);
  std::vector<std::pair<std::string, torch::Tensor>> arrays;
  for (size_t k = 0; k < files.classes.size(); ++k)
    arrays.emplace_back("class_" + std::to_string(files.classes[k]), maps[static_cast<int64_t>(k)].contiguous());
  files.file = folder.write_maps(report.image.index, arrays);
  save_sample_image(input.original, folder.path(report_files::kImagesDir), report.image.index);
  return files;
}

}  // namespace bagnet::cli
