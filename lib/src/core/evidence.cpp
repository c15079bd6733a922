#include <bagnet/error.h>
#include <bagnet/evidence.h>

#include <torch/torch.h>

namespace bagnet {

torch::Tensor EvidenceMap::image_logits() const {
  BAGNET_CHECK(logits.defined() && logits.dim() == 4, ErrorKind::InvalidArgument, "evidence map is empty");
  return logits.mean({2, 3});
}

EvidenceMap compute_evidence(BagNet& net, const torch::Tensor& input, const EvidenceOptions& options) {
  BAGNET_CHECK(input.dim() == 4, ErrorKind::BadInput, "evidence input: expected [N, C, H, W], got ",
               input.dim(), " dimensions");
  EvidenceMap map;
  map.geometry = map_geometry(net->arch(), input.size(2), input.size(3));
  map.classes = options.classes;
  if (map.classes.empty())
    for (int64_t c = 0; c < net->arch().num_classes; ++c) map.classes.push_back(c);
  if (options.on_progress) options.on_progress({0, 1, "stride-" + std::to_string(map.geometry.stride) + " map"});
  torch::NoGradGuard no_grad;
  const auto device = net->parameters().front().device();
  map.logits = net->patch_logits(net->features(input.to(device)), map.classes).to(torch::kCPU).contiguous();
  BAGNET_CHECK(map.logits.size(2) == map.geometry.rows && map.logits.size(3) == map.geometry.cols,
               ErrorKind::Runtime, "internal: map is ", map.logits.size(2), "x", map.logits.size(3),
               ", geometry says ", map.geometry.rows, "x", map.geometry.cols);
  if (options.on_progress) options.on_progress({1, 1, "stride-" + std::to_string(map.geometry.stride) + " map"});
  return map;
}

}  // namespace bagnet
