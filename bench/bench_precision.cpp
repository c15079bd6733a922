// What bfloat16 costs in exactness, measured against float32 on real inputs (not a test): for each
// image, the native maps of all classes are computed by two copies of one model, float32 and
// bfloat16, and compared:
//   - map error: max |bf16 - fp32| over all classes and positions / max |fp32| (per image; the
//     worst and the median image are printed), and the same for the float32 top-1 class alone;
//   - top-1: how often the image's top-1 class differs;
//   - top-10 patches: how often the 10 cells with the most positive evidence for the float32 top-1
//     class differ as a set, and the mean overlap of the two sets;
//   - flip set: how often the minimal flip set between the float32 top-1 and top-2 classes
//     (report.h) differs (other cells, or another size);
//   - with --dense-stride S: the dense map of the float32 top-1 class at stride S (1: every pixel),
//     max error as above.
//   bench_precision --weights FILE (--dataset PATH | --images a.png,b.png) [--limit N] [--dense-stride S]
//                   [--threads N] [--device cpu|cuda]
#include <bagnet/bagnet.h>
#include <bagnet/dataset.h>
#include <bagnet/image.h>
#include <bagnet/ranking.h>
#include <bagnet/report.h>

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

struct Totals {
  std::vector<double> map_error, class_error, dense_error;
  int64_t images = 0, top1_changed = 0, top10_changed = 0, flip_changed = 0, flip_size_changed = 0;
  double top10_overlap = 0;
};

double relative_error(const torch::Tensor& reference, const torch::Tensor& other) {
  return ((other - reference).abs().max() / reference.abs().max()).item<double>();
}

std::set<std::pair<int64_t, int64_t>> cells(const std::vector<bagnet::PatchScore>& patches) {
  std::set<std::pair<int64_t, int64_t>> out;
  for (const auto& p : patches) out.insert({p.row, p.col});
  return out;
}

std::set<std::pair<int64_t, int64_t>> cells(const bagnet::FlipSet& flip) {
  std::set<std::pair<int64_t, int64_t>> out;
  for (const auto& p : flip.patches) out.insert({p.row, p.col});
  return out;
}

// maps_*: [C, H', W'] native maps of one image.
void compare_image(const torch::Tensor& fp32, const torch::Tensor& bf16, const bagnet::MapGeometry& geometry,
                   Totals& t) {
  const torch::Tensor logits32 = fp32.mean({1, 2}), logits16 = bf16.mean({1, 2});
  const auto order = logits32.argsort(0, /*descending=*/true);
  const int64_t top1 = order[0].item<int64_t>(), top2 = order[1].item<int64_t>();
  t.map_error.push_back(relative_error(fp32, bf16));
  t.class_error.push_back(relative_error(fp32[top1], bf16[top1]));
  t.top1_changed += logits16.argmax().item<int64_t>() != top1;
  bagnet::RankOptions ten;
  ten.k = 10;
  const auto a = cells(bagnet::top_patches(fp32[top1], geometry, ten, bagnet::Sign::Positive));
  const auto b = cells(bagnet::top_patches(bf16[top1], geometry, ten, bagnet::Sign::Positive));
  t.top10_changed += a != b;
  int64_t common = 0;
  for (const auto& c : a) common += b.count(c);
  t.top10_overlap += a.empty() ? 1.0 : double(common) / double(a.size());
  const auto flip32 = bagnet::minimal_flip_set(fp32[top1], fp32[top2], fp32, geometry);
  const auto flip16 = bagnet::minimal_flip_set(bf16[top1], bf16[top2], bf16, geometry);
  t.flip_changed += cells(flip32) != cells(flip16) || flip32.possible != flip16.possible;
  t.flip_size_changed += flip32.size != flip16.size || flip32.possible != flip16.possible;
  ++t.images;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * double(v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string weights, dataset, images, device_spec = "cpu";
  int threads = 0;
  int64_t limit = 0, dense_stride = 0, batch = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--weights")) weights = argv[i + 1];
    else if (!std::strcmp(argv[i], "--dataset")) dataset = argv[i + 1];
    else if (!std::strcmp(argv[i], "--images")) images = argv[i + 1];
    else if (!std::strcmp(argv[i], "--limit")) limit = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--dense-stride")) dense_stride = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--device")) device_spec = argv[i + 1];
  }
  try {
    if (weights.empty() || dataset.empty() == images.empty())
      throw std::runtime_error("usage: bench_precision --weights FILE (--dataset PATH | --images a.png,b.png) [--limit N] "
                               "[--dense-stride S] [--threads N] [--device cpu|cuda]");
    bagnet::configure_runtime(threads);
    bagnet::LoadOptions load;
    load.device = bagnet::resolve_device(device_spec);
    bagnet::LoadedModel fp32 = bagnet::load_model(weights, load);
    load.precision = bagnet::Precision::BFloat16;
    bagnet::LoadedModel bf16 = bagnet::load_model(weights, load);
    const bagnet::InputSpec spec = bagnet::input_spec_of(fp32);

    std::vector<torch::Tensor> inputs;  // [C, H, W] each
    if (!dataset.empty()) {
      const auto data = bagnet::open_dataset(dataset);
      const size_t n = limit > 0 ? std::min<size_t>(data->size(), size_t(limit)) : data->size();
      for (size_t i = 0; i < n; ++i) inputs.push_back(bagnet::preprocess(data->image(i), spec).tensor);
    } else {
      std::stringstream list(images);
      std::string path;
      while (std::getline(list, path, ',')) inputs.push_back(bagnet::load_image(path, spec).tensor);
    }
    std::printf("model %s (%s), %zu images, device %s\n", weights.c_str(), fp32.arch.name.c_str(), inputs.size(),
                bagnet::device_description(load.device).c_str());

    Totals t;
    for (size_t start = 0; start < inputs.size();) {
      // Batches of one input size (datasets); single images otherwise.
      size_t end = start + 1;
      while (end < inputs.size() && end - start < size_t(batch) && inputs[end].sizes() == inputs[start].sizes()) ++end;
      const torch::Tensor x = torch::stack(std::vector<torch::Tensor>(inputs.begin() + start, inputs.begin() + end));
      const bagnet::EvidenceMap a = bagnet::compute_evidence(fp32.net, x), b = bagnet::compute_evidence(bf16.net, x);
      for (int64_t i = 0; i < x.size(0); ++i) {
        compare_image(a.logits[i], b.logits[i], a.geometry, t);
        if (dense_stride > 0) {
          bagnet::DenseOptions dense;
          dense.stride = dense_stride;
          dense.classes = {a.logits[i].mean({1, 2}).argmax().item<int64_t>()};
          const auto one = x.slice(0, i, i + 1);
          t.dense_error.push_back(relative_error(bagnet::compute_dense_evidence(fp32.net, one, dense).logits,
                                                 bagnet::compute_dense_evidence(bf16.net, one, dense).logits));
        }
      }
      start = end;
    }
    const double n = double(std::max<int64_t>(t.images, 1));
    std::printf("  map error, all classes      max %.2e  median %.2e  (max |bf16 - fp32| / max |fp32|, per image)\n",
                percentile(t.map_error, 1), percentile(t.map_error, 0.5));
    std::printf("  map error, top-1 class      max %.2e  median %.2e\n", percentile(t.class_error, 1),
                percentile(t.class_error, 0.5));
    if (!t.dense_error.empty())
      std::printf("  dense map (stride %lld), top-1 class  max %.2e  median %.2e\n", (long long)dense_stride,
                  percentile(t.dense_error, 1), percentile(t.dense_error, 0.5));
    std::printf("  top-1 class changed         %lld of %lld (%.2f%%)\n", (long long)t.top1_changed, (long long)t.images,
                100.0 * double(t.top1_changed) / n);
    std::printf("  top-10 patches changed      %lld of %lld (%.2f%%), mean overlap %.3f\n", (long long)t.top10_changed,
                (long long)t.images, 100.0 * double(t.top10_changed) / n, t.top10_overlap / n);
    std::printf("  flip set (top-1 vs top-2)   %lld of %lld changed (%.2f%%), size changed in %lld\n",
                (long long)t.flip_changed, (long long)t.images, 100.0 * double(t.flip_changed) / n,
                (long long)t.flip_size_changed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
