// bagnet predict: top-k classes of images, with logit and softmax probability.
#include "commands.h"
#include "options.h"
#include "sample_loop.h"
#include "samples.h"

#include <bagnet/json_text.h>
#include <bagnet/evidence.h>
#include <bagnet/labels.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <iomanip>
#include <iostream>

namespace bagnet::cli {

int run_predict(int argc, char** argv) {
  cxxopts::Options options("bagnet predict",
                           "Classify images (or the samples of datasets: an image folder, a path,label CSV, an "
                           "*-images-idx3-ubyte[.gz] file). The image logit is the mean of the BagNet's patch logits "
                           "over all positions, so any image size works.");
  options.positional_help("IMAGE|DATASET...");
  add_model_flags(options);
  add_precision_flag(options);
  add_image_flags(options);
  options.add_options("Output")
      ("k,topk", "number of classes to show", cxxopts::value<int>()->default_value("5"))
      ("json", "print JSON instead of text")
      ("images", "input images or datasets", cxxopts::value<std::vector<std::string>>());
  add_help_flag(options);
  options.parse_positional({"images"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv,
                     "  bagnet predict cat.jpg --weights bagnet32-2ddd53ed.pth.tar\n"
                     "  bagnet predict a.png b.jpg --weights model.pt --topk 3 --json\n"
                     "  bagnet predict wide.png --weights model.pt --resize none --crop none   # full image\n",
                     parsed))
    return kExitOk;
  if (!parsed.count("images")) throw UsageError("no input images given");
  Samples samples(parsed["images"].as<std::vector<std::string>>());
  ModelFlags model_flags = read_model_flags(parsed);
  model_flags.precision = read_precision_flag(parsed);
  const ImageFlags image_flags = read_image_flags(parsed);
  const bool json = parsed.count("json") > 0;
  int topk = parsed["topk"].as<int>();
  if (topk < 1) throw UsageError("--topk must be >= 1");

  LoadedModel model = open_model(model_flags);
  const auto names = model_class_names(model, model_flags.labels);
  const InputSpec preprocess = make_input_spec(image_flags, model);
  topk = std::min<int>(topk, static_cast<int>(model.arch.num_classes));

  nlohmann::json results = nlohmann::json::array();
  SampleLoop loop("predict", samples.size());
  for (int64_t i = 0; i < samples.size(); ++i) loop.run(samples.info(i).source, [&] {
    const std::string path = samples.info(i).source;
    const ModelInput input = bagnet::preprocess(samples.image(i), preprocess);
    const EvidenceMap map = compute_evidence(model.net, input.tensor.unsqueeze(0));
    const torch::Tensor logits = map.image_logits()[0];
    const torch::Tensor probabilities = torch::softmax(logits.to(torch::kDouble), 0);
    const auto top = std::get<1>(logits.topk(topk));
    nlohmann::json predictions = nlohmann::json::array();
    for (int r = 0; r < topk; ++r) {
      const int64_t c = top[r].item<int64_t>();
      predictions.push_back({{"rank", r + 1},
                             {"class", c},
                             {"name", names[c]},
                             {"logit", logits[c].item<float>()},
                             {"probability", probabilities[c].item<double>()}});
    }
    const auto& t = input.transform;
    nlohmann::json result = {{"image", json_path(path)},
                             {"original_size", {t.original_height, t.original_width}},
                             {"input_size", {t.input_height, t.input_width}},
                             {"map_size", {map.geometry.rows, map.geometry.cols}},
                             {"predictions", predictions}};
    if (json) {
      results.push_back(result);
      return;
    }
    std::cout << path << "  (" << t.original_height << "x" << t.original_width << " -> input " << t.input_height
              << "x" << t.input_width << ", " << map.geometry.rows << "x" << map.geometry.cols << " patches)\n";
    for (const auto& p : predictions)
      std::cout << "  " << std::setw(2) << p["rank"].get<int>() << ". " << std::setw(5) << p["class"].get<int64_t>()
                << "  " << std::left << std::setw(28) << p["name"].get<std::string>() << std::right << " logit "
                << std::setw(9) << fixed(p["logit"].get<double>(), 4) << "  p " << fixed(p["probability"].get<double>(), 4)
                << "\n";
    std::cout << std::flush;
  });
  const int code = loop.finish();
  if (json) {
    nlohmann::json out = {{"weights", json_path(model.path)},
                          {"sha256", model.checkpoint.sha256},
                          {"architecture", arch_to_spec(model.arch)},
                          {"precision", precision_name(model.net->precision())},
                          {"images", results}};
    std::cout << to_json_text(out, 2) << "\n";
  }
  return code;
}

}  // namespace bagnet::cli
