// Writes the committed seed inputs of the torch-format fuzz targets (corpus/<target>/) from a tiny
// BagNet built here, so that the seeds are small and their provenance is code:
//   build-fuzz/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
// (the idx, csv and report_lines seeds are small hand-made files; scripts/fuzz.sh adds the fixtures).
#include "pickle_builder.h"

#include "core/zip_reader.h"

#include <bagnet/arch.h>
#include <bagnet/checkpoint.h>
#include <bagnet/model.h>
#include <bagnet/model_file.h>

#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

namespace fs = std::filesystem;
using namespace bagnet;

namespace {

void put(const fs::path& folder, const std::string& name, const std::string& bytes) {
  fs::create_directories(folder);
  std::ofstream(folder / name, std::ios::binary) << bytes;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The float tensors of a state dict as a legacy torch.save file (integer buffers left out, as in
// the official 2019 checkpoints, which predate num_batches_tracked).
std::string legacy_of(const StateDict& weights) {
  std::vector<test::FakeTensor> tensors;
  std::vector<std::pair<std::string, std::vector<float>>> storages;
  for (const auto& [name, tensor] : weights) {
    if (tensor.scalar_type() != torch::kFloat) continue;
    const std::string key = std::to_string(storages.size());
    const torch::Tensor t = tensor.contiguous();
    storages.emplace_back(key, std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()));
    tensors.push_back({name, key, 0, t.sizes().vec(), t.strides().vec()});
  }
  return test::legacy_file(tensors, storages);
}

// Small images in every format OpenCV decodes here, grey, colour, with alpha and 16-bit.
void write_images(const fs::path& folder) {
  fs::create_directories(folder);
  cv::Mat colour(12, 10, CV_8UC3), grey(9, 7, CV_8UC1), alpha(6, 6, CV_8UC4), deep(5, 8, CV_16UC3);
  cv::randu(colour, 0, 256);
  cv::randu(grey, 0, 256);
  cv::randu(alpha, 0, 256);
  cv::randu(deep, 0, 65536);
  const std::vector<std::pair<std::string, const cv::Mat*>> files{
      {"rgb.png", &colour}, {"grey.png", &grey}, {"rgba.png", &alpha}, {"rgb16.png", &deep},
      {"rgb.jpg", &colour}, {"grey.jpg", &grey}, {"rgb.bmp", &colour}, {"rgb.ppm", &colour},
      {"grey.pgm", &grey}, {"rgb.tiff", &colour}, {"rgb.webp", &colour}};
  for (const auto& [name, image] : files) {
    std::vector<int> params;
    if (name == "grey.jpg") params = {cv::IMWRITE_JPEG_PROGRESSIVE, 1};
    try {
      cv::imwrite((folder / name).string(), *image, params);
    } catch (const cv::Exception&) {  // a codec this OpenCV lacks
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_seeds CORPUS_DIR\n";
    return 2;
  }
  const fs::path corpus = argv[1];
  torch::manual_seed(7);
  ModelMeta meta;
  meta.arch = parse_arch("blocks=1-1-1-1,kernel3=1-1-0-0,strides=2-1-1-1,widths=4-4-4-4,stem=4,in=1,classes=3");
  meta.class_names = {"cat", "dog", "bird"};
  meta.input = default_input_spec(1);
  meta.input.resize = 16;
  BagNet net(meta.arch);
  const StateDict weights = state_dict_of(net);

  const fs::path model_path = corpus / "tiny-model.pt";
  save_model_file(model_path.string(), weights, meta);
  const std::string model = slurp(model_path);
  fs::remove(model_path);
  const std::string legacy = legacy_of(weights);
  put(corpus / "checkpoint", "model-file.pt", model);
  put(corpus / "checkpoint", "legacy.pth.tar", legacy);
  put(corpus / "zip", "model-file.pt", model);
  put(corpus / "zip", "two-entries.zip", test::zip_file({{"archive/version", "3\n"}, {"archive/data/0", "abcd"}}));

  // The pickles inside both files, one per seed.
  const auto* bytes = reinterpret_cast<const uint8_t*>(model.data());
  for (const auto& entry : bagnet::detail::read_zip(bytes, model.size(), "tiny model"))
    if (entry.name.size() > 4 && entry.name.substr(entry.name.size() - 4) == ".pkl")
      put(corpus / "unpickler", "model-file-data.pkl", std::string(reinterpret_cast<const char*>(entry.data), entry.size));
  put(corpus / "unpickler", "legacy-header.pkl", test::legacy_header());
  put(corpus / "unpickler", "legacy-state-dict.pkl",
      test::state_dict_pickle({{"w", "0", 0, {2, 2}, {2, 1}}, {"v", "0", 1, {3}, {1}}}, {{"0", {1, 2, 3, 4}}}));

  put(corpus / "model_meta", "tiny.json", meta_to_json(meta));
  ModelMeta rgb = meta;
  rgb.arch = parse_arch("bagnet9");
  rgb.class_names.assign(static_cast<size_t>(rgb.arch.num_classes), "c");
  rgb.input = default_input_spec(3);
  rgb.training = R"({"epochs": 2, "data": "x.csv"})";
  put(corpus / "model_meta", "bagnet9.json", meta_to_json(rgb));
  write_images(corpus / "image");
  std::cout << "seeds written under " << corpus.string() << "\n";
  return 0;
}
