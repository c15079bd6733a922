#include "folded_net.h"

#include "classifier_rows.h"
#include "convolve.h"

#include <bagnet/error.h>

#include <torch/torch.h>

#include <unordered_map>

namespace bagnet::detail {
namespace {

using Tensors = std::unordered_map<std::string, torch::Tensor>;

constexpr double kBatchNormEps = 1e-5;  // torch.nn.BatchNorm2d's default, used by the official models

torch::Tensor channels_last(const torch::Tensor& t) { return t.contiguous(torch::MemoryFormat::ChannelsLast); }

FoldedConv fold(const Tensors& p, const std::string& conv, const std::string& bn, int64_t stride, int64_t dilation,
                Precision precision) {
  const torch::Tensor w = p.at(conv + ".weight");
  const torch::Tensor scale = p.at(bn + ".weight") / torch::sqrt(p.at(bn + ".running_var") + kBatchNormEps);
  FoldedConv out;
  out.weight = channels_last(w * scale.view({-1, 1, 1, 1}));
  out.bias = p.at(bn + ".bias") - p.at(bn + ".running_mean") * scale;
  out.stride = stride;
  out.dilation = dilation;
  if (precision == Precision::BFloat16) out.weight = channels_last(out.weight.to(torch::kBFloat16));
  else if (winograd_pays_off(out.weight, stride, dilation)) out.winograd = Winograd3x3(out.weight, out.bias);
  return out;
}

}  // namespace

torch::Tensor FoldedConv::operator()(const torch::Tensor& x) const {
  if (winograd.defined()) return winograd(x);
  if (weight.scalar_type() == torch::kBFloat16) return convolve(x, weight, bias, stride, dilation);
  const std::vector<int64_t> strides{stride, stride}, padding{0, 0}, dilations{dilation, dilation};
  return torch::conv2d(x, weight, bias, strides, padding, dilations);
}

torch::Tensor FoldedBlock::operator()(const torch::Tensor& x) const {
  torch::Tensor out = conv1(x);
  out.relu_();
  out = conv2(out);
  out.relu_();
  out = conv3(out);
  // Top-left aligned: the surplus of the residual lies at the bottom/right (official crop). A
  // pointwise downsample commutes with the crop, so it only computes the positions kept.
  const int64_t h = out.size(2), w = out.size(3);
  torch::Tensor residual;
  if (has_downsample && downsample.stride == 1) {
    residual = downsample(x.slice(2, 0, h).slice(3, 0, w));
  } else {
    residual = has_downsample ? downsample(x) : x;
    residual = residual.slice(2, 0, h).slice(3, 0, w);
  }
  out.add_(residual);
  return out.relu_();
}

torch::Tensor space_to_batch(const torch::Tensor& x, int64_t s) {
  const int64_t n = x.size(0), c = x.size(1), h = (x.size(2) + s - 1) / s, w = (x.size(3) + s - 1) / s;
  // One strided copy per phase into channels-last storage: a pad + 6-d permute + reshape made two
  // full copies and took twice as long (bench_layers, "to phases").
  const torch::Tensor out = torch::empty({s * s * n, h, w, c}, x.options());
  const torch::Tensor source = x.permute({0, 2, 3, 1});  // [N, H, W, C], free for channels-last input
  for (int64_t i = 0; i < s; ++i) {
    for (int64_t j = 0; j < s; ++j) {
      const torch::Tensor phase = source.slice(1, i, torch::nullopt, s).slice(2, j, torch::nullopt, s);
      const torch::Tensor target = out.slice(0, (i * s + j) * n, (i * s + j + 1) * n);
      target.slice(1, 0, phase.size(1)).slice(2, 0, phase.size(2)).copy_(phase);
      // Rows and columns past the image edge are zero padding.
      if (phase.size(1) < h) target.slice(1, phase.size(1)).zero_();
      if (phase.size(2) < w) target.slice(2, phase.size(2)).zero_();
    }
  }
  return out.permute({0, 3, 1, 2});  // [s*s*N, C, h, w] in channels-last memory
}

torch::Tensor batch_to_space(const torch::Tensor& x, int64_t s) {
  const int64_t n = x.size(0) / (s * s), c = x.size(1), h = x.size(2), w = x.size(3);
  return x.permute({0, 2, 3, 1})
      .reshape({s, s, n, h, w, c})
      .permute({2, 3, 0, 4, 1, 5})
      .reshape({n, h * s, w * s, c})
      .permute({0, 3, 1, 2});
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
      const int64_t stride = block_stride(arch, s, b), planes = arch.widths[s], out = planes * arch.expansion;
      const bool keep = stride > 1 && dilation == 1 && kept * stride <= output_stride;
      int64_t rh = ch, rw = cw;
      conv(ch, cw, inplanes, planes, 1, 1, 1);
      conv(ch, cw, planes, planes, block_kernel(arch, s, b), keep ? stride : 1, dilation);
      conv(ch, cw, planes, out, 1, 1, 1);
      if (stride != 1 || inplanes != out) {
        if (keep) conv(rh, rw, inplanes, out, 1, stride, 1);
        else conv(rh = ch, rw = cw, inplanes, out, 1, 1, 1);  // cropped to the block output first
      }
      if (keep) kept *= stride;
      else dilation *= stride;
      inplanes = out;
    }
  }
  int64_t fh = ch, fw = cw;
  conv(fh, fw, inplanes, classes, 1, 1, 1);
  return flops;
}

FoldedNet::FoldedNet(const BagNetImpl& net, int64_t output_stride, DenseForm form, Precision precision)
    : output_stride_(output_stride), precision_(precision), patch_(receptive_field(net.arch())) {
  const Arch& arch = net.arch();
  const auto allowed = dense_strides(arch);
  BAGNET_CHECK(std::find(allowed.begin(), allowed.end(), output_stride) != allowed.end(), ErrorKind::InvalidArgument,
               "dense stride ", output_stride, " not available for this architecture (possible: ", [&] {
                 std::string s;
                 for (auto v : allowed) s += (s.empty() ? "" : ", ") + std::to_string(v);
                 return s;
               }(), ")");
  torch::NoGradGuard no_grad;
  Tensors p;
  for (const auto& item : net.named_parameters()) p[item.key()] = item.value().detach();
  for (const auto& item : net.named_buffers()) p[item.key()] = item.value().detach();

  stem1_.weight = channels_last(p.at("conv1.weight"));
  if (precision == Precision::BFloat16) stem1_.weight = channels_last(stem1_.weight.to(torch::kBFloat16));
  stem2_ = fold(p, "conv2", "bn1", 1, 1, precision);
  // Products of the strides kept and removed so far; the dilation of later kernels (Atrous only).
  int64_t kept = 1, removed = 1, dilation = 1;
  for (size_t s = 0; s < arch.blocks.size(); ++s) {
    for (int64_t b = 0; b < arch.blocks[s]; ++b) {
      const std::string prefix = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      const int64_t stride = block_stride(arch, s, b);
      const bool keep = stride > 1 && removed == 1 && kept * stride <= output_stride;
      FoldedBlock block;
      block.conv1 = fold(p, prefix + "conv1", prefix + "bn1", 1, 1, precision);
      block.conv2 = fold(p, prefix + "conv2", prefix + "bn2", keep ? stride : 1, dilation, precision);
      block.conv3 = fold(p, prefix + "conv3", prefix + "bn3", 1, 1, precision);
      block.has_downsample = p.count(prefix + "downsample.0.weight") > 0;
      if (block.has_downsample)
        block.downsample = fold(p, prefix + "downsample.0", prefix + "downsample.1", keep ? stride : 1, 1, precision);
      if (keep) {
        kept *= stride;
      } else if (stride > 1) {
        removed *= stride;
        if (form == DenseForm::Atrous) {
          dilation *= stride;
        } else {
          block.split_after = stride;
          splits_.push_back(stride);
        }
      }
      blocks_.push_back(std::move(block));
    }
  }
  const torch::Tensor fc = p.at("fc.weight");
  fc_weight_ = fc.view({fc.size(0), fc.size(1), 1, 1}).contiguous();
  fc_bias_ = p.at("fc.bias");
}

torch::Tensor FoldedNet::stem(const torch::Tensor& input) const {
  const torch::Tensor x = precision_ == Precision::BFloat16 ? input.to(torch::kBFloat16) : input;
  return stem2_(stem1_(x)).relu_();
}

torch::Tensor FoldedNet::features(const torch::Tensor& input) const {
  torch::Tensor x = stem(input);
  for (const auto& block : blocks_) {
    x = block(x);
    if (block.split_after > 1) x = space_to_batch(x, block.split_after);
  }
  return x;
}

torch::Tensor FoldedNet::logits(const torch::Tensor& input, const std::vector<int64_t>& classes) const {
  const torch::Tensor x = features(input);
  const int64_t rows = (input.size(2) - patch_) / output_stride_ + 1, cols = (input.size(3) - patch_) / output_stride_ + 1;
  return merge_phases(classify(x, classes), rows, cols);
}

torch::Tensor FoldedNet::merge_phases(const torch::Tensor& logits, int64_t rows, int64_t cols) const {
  torch::Tensor x = logits;
  for (auto split = splits_.rbegin(); split != splits_.rend(); ++split) x = batch_to_space(x, *split);
  BAGNET_CHECK(x.size(2) >= rows && x.size(3) >= cols, ErrorKind::Runtime, "internal: dense output is ", x.size(2),
               "x", x.size(3), ", expected at least ", rows, "x", cols);
  // Positions past the valid ones came from the zero padding of space_to_batch.
  return x.slice(2, 0, rows).slice(3, 0, cols);
}

torch::Tensor FoldedNet::classify(const torch::Tensor& x, const std::vector<int64_t>& classes) const {
  const auto [weight, bias] = classifier_rows(fc_weight_, fc_bias_, classes);
  return torch::conv2d(x.to(torch::kFloat), channels_last(weight), bias);
}

}  // namespace bagnet::detail
