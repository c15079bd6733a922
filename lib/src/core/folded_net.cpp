#include "folded_net.h"

#include <bagnet/error.h>

#include <torch/torch.h>

#include <unordered_map>

namespace bagnet::detail {
namespace {

using Tensors = std::unordered_map<std::string, torch::Tensor>;

constexpr double kBatchNormEps = 1e-5;  // torch.nn.BatchNorm2d's default, used by the official models

torch::Tensor channels_last(const torch::Tensor& t) { return t.contiguous(torch::MemoryFormat::ChannelsLast); }

FoldedConv fold(const Tensors& p, const std::string& conv, const std::string& bn, int64_t stride, int64_t dilation) {
  const torch::Tensor w = p.at(conv + ".weight");
  const torch::Tensor scale = p.at(bn + ".weight") / torch::sqrt(p.at(bn + ".running_var") + kBatchNormEps);
  FoldedConv out;
  out.weight = channels_last(w * scale.view({-1, 1, 1, 1}));
  out.bias = p.at(bn + ".bias") - p.at(bn + ".running_mean") * scale;
  out.stride = stride;
  out.dilation = dilation;
  return out;
}

}  // namespace

torch::Tensor FoldedConv::operator()(const torch::Tensor& x) const {
  const std::vector<int64_t> strides{stride, stride}, padding{0, 0}, dilations{dilation, dilation};
  return torch::conv2d(x, weight, bias, strides, padding, dilations);
}

torch::Tensor FoldedBlock::operator()(const torch::Tensor& x) const {
  torch::Tensor out = conv1(x);
  out.relu_();
  out = conv2(out);
  out.relu_();
  out = conv3(out);
  torch::Tensor residual = has_downsample ? downsample(x) : x;
  // Top-left aligned: the surplus of the residual lies at the bottom/right (official crop).
  residual = residual.slice(2, 0, out.size(2)).slice(3, 0, out.size(3));
  out.add_(residual);
  return out.relu_();
}

std::vector<int64_t> dense_strides(const Arch& arch) {
  std::vector<int64_t> strides{1};
  for (size_t s = 0; s < arch.strides.size(); ++s)
    if (arch.strides[s] > 1) strides.push_back(strides.back() * arch.strides[s]);
  return strides;
}

double folded_flops(const Arch& arch, int64_t h, int64_t w, int64_t output_stride, int64_t classes) {
  double flops = 0;
  auto conv = [&](int64_t& ch, int64_t& cw, int64_t cin, int64_t cout, int64_t k, int64_t s, int64_t d) {
    ch = (ch - d * (k - 1) - 1) / s + 1;
    cw = (cw - d * (k - 1) - 1) / s + 1;
    flops += 2.0 * double(ch) * double(cw) * double(cin) * double(cout) * double(k * k);
  };
  int64_t ch = h, cw = w;
  conv(ch, cw, arch.in_channels, arch.stem_width, 1, 1, 1);
  conv(ch, cw, arch.stem_width, arch.stem_width, 3, 1, 1);
  int64_t inplanes = arch.stem_width, kept = 1, dilation = 1;
  for (size_t s = 0; s < arch.blocks.size(); ++s) {
    for (int64_t b = 0; b < arch.blocks[s]; ++b) {
      const int64_t stride = b == 0 ? arch.strides[s] : 1, planes = arch.widths[s], out = planes * arch.expansion;
      const bool keep = stride > 1 && dilation == 1 && kept * stride <= output_stride;
      int64_t rh = ch, rw = cw;
      if (stride != 1 || inplanes != out) conv(rh, rw, inplanes, out, 1, keep ? stride : 1, 1);
      conv(ch, cw, inplanes, planes, 1, 1, 1);
      conv(ch, cw, planes, planes, b < arch.kernel3[s] ? 3 : 1, keep ? stride : 1, dilation);
      conv(ch, cw, planes, out, 1, 1, 1);
      if (keep) kept *= stride;
      else dilation *= stride;
      inplanes = out;
    }
  }
  int64_t fh = ch, fw = cw;
  conv(fh, fw, inplanes, classes, 1, 1, 1);
  return flops;
}

FoldedNet::FoldedNet(BagNet& net, int64_t output_stride) : output_stride_(output_stride) {
  const Arch& arch = net->arch();
  const auto allowed = dense_strides(arch);
  BAGNET_CHECK(std::find(allowed.begin(), allowed.end(), output_stride) != allowed.end(), ErrorKind::InvalidArgument,
               "dense stride ", output_stride, " not available for this architecture (possible: ", [&] {
                 std::string s;
                 for (auto v : allowed) s += (s.empty() ? "" : ", ") + std::to_string(v);
                 return s;
               }(), ")");
  torch::NoGradGuard no_grad;
  Tensors p;
  for (const auto& item : net->named_parameters()) p[item.key()] = item.value().detach();
  for (const auto& item : net->named_buffers()) p[item.key()] = item.value().detach();

  stem1_.weight = channels_last(p.at("conv1.weight"));
  stem2_ = fold(p, "conv2", "bn1", 1, 1);
  int64_t kept = 1, dilation = 1;  // product of strides kept so far; dilation from strides removed
  for (size_t s = 0; s < arch.blocks.size(); ++s) {
    for (int64_t b = 0; b < arch.blocks[s]; ++b) {
      const std::string prefix = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      const int64_t stride = b == 0 ? arch.strides[s] : 1;
      const bool keep = stride > 1 && dilation == 1 && kept * stride <= output_stride;
      FoldedBlock block;
      block.conv1 = fold(p, prefix + "conv1", prefix + "bn1", 1, 1);
      block.conv2 = fold(p, prefix + "conv2", prefix + "bn2", keep ? stride : 1, dilation);
      block.conv3 = fold(p, prefix + "conv3", prefix + "bn3", 1, 1);
      block.has_downsample = p.count(prefix + "downsample.0.weight") > 0;
      if (block.has_downsample)
        block.downsample = fold(p, prefix + "downsample.0", prefix + "downsample.1", keep ? stride : 1, 1);
      if (keep) kept *= stride;
      else dilation *= stride;
      blocks_.push_back(std::move(block));
    }
  }
  const torch::Tensor fc = p.at("fc.weight");
  fc_weight_ = fc.view({fc.size(0), fc.size(1), 1, 1}).contiguous();
  fc_bias_ = p.at("fc.bias");
}

torch::Tensor FoldedNet::logits(const torch::Tensor& input, const std::vector<int64_t>& classes) const {
  torch::Tensor x = stem2_(stem1_(input));
  x.relu_();
  for (const auto& block : blocks_) x = block(x);
  torch::Tensor weight = fc_weight_, bias = fc_bias_;
  if (!classes.empty()) {
    const auto index = torch::tensor(classes, torch::kLong).to(weight.device());
    weight = weight.index_select(0, index);
    bias = bias.index_select(0, index);
  }
  return torch::conv2d(x, channels_last(weight), bias);
}

}  // namespace bagnet::detail
