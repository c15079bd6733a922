// bagnet eval: accuracy of a model on a labelled dataset, with the confusion matrix and the list of
// misclassified examples (source, true and predicted class, both logits).
#include "commands.h"
#include "options.h"
#include "progress.h"

#include <bagnet/json_text.h>
#include <bagnet/dataset.h>
#include <bagnet/error.h>
#include <bagnet/runtime.h>
#include <bagnet/train.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <iomanip>
#include <iostream>
#include <memory>

namespace bagnet::cli {

int run_eval(int argc, char** argv) {
  cxxopts::Options options("bagnet eval",
                           "Evaluate a model on DATASET (a folder of class folders, a CSV of path,label, or an "
                           "*-images-idx3-ubyte[.gz] file): top-1/top-5 accuracy, confusion matrix and the "
                           "misclassified examples. Labels are class indices of the model.");
  options.positional_help("DATASET");
  add_model_flags(options);
  add_precision_flag(options);
  add_image_flags(options);
  options.add_options("Output")
      ("json", "print JSON (top1, top5 as fractions, confusion, misclassified) instead of text")
      ("show", "misclassified examples listed in the text output", cxxopts::value<int>()->default_value("20"))
      ("limit", "evaluate only the first N examples (0: all)", cxxopts::value<int64_t>()->default_value("0"))
      ("batch-size", "examples per forward pass", cxxopts::value<int64_t>()->default_value("256"))
      ("cache-mb", "keep preprocessed images in memory up to this size", cxxopts::value<int64_t>()->default_value("2048"))
      ("dataset", "labelled data", cxxopts::value<std::string>());
  add_help_flag(options);
  options.parse_positional({"dataset"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv,
                     "  bagnet eval /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz      # default model\n"
                     "  bagnet eval val.csv --weights model.pt --json > eval.json\n"
                     "  bagnet eval imagenet-val/ --weights bagnet32-2ddd53ed.pth.tar --limit 1000\n",
                     parsed))
    return kExitOk;
  if (!parsed.count("dataset")) throw UsageError("no DATASET given");
  const std::string data_path = parsed["dataset"].as<std::string>();
  ModelFlags model_flags = read_model_flags(parsed);
  model_flags.precision = read_precision_flag(parsed);
  const ImageFlags image_flags = read_image_flags(parsed);
  const bool json = parsed.count("json") > 0;
  const int show = parsed["show"].as<int>();
  const int64_t limit = parsed["limit"].as<int64_t>();
  EvalOptions eval;
  eval.batch_size = parsed["batch-size"].as<int64_t>();
  if (eval.batch_size < 1) throw UsageError("--batch-size must be >= 1");
  if (limit < 0) throw UsageError("--limit must be >= 0");

  LoadedModel model = open_model(model_flags);
  eval.device = resolve_device(model_flags.device);
  const std::vector<std::string> names = model_class_names(model, model_flags.labels);
  const InputSpec preprocess = make_input_spec(image_flags, model);
  std::string note;
  const std::unique_ptr<Dataset> data = relabel_for_model(open_dataset(data_path), names, &note);
  if (!note.empty()) std::cerr << "note: " << note << "\n";
  const int64_t cache_mb = limit > 0 ? 0 : parsed["cache-mb"].as<int64_t>();
  std::unique_ptr<ProgressBar> bar = std::make_unique<ProgressBar>("loading");
  const DatasetSource all(*data, preprocess, cache_mb, bar->callback());
  bar.reset();
  std::unique_ptr<SubsetSource> subset;
  const ExampleSource* source = &all;
  if (limit > 0 && limit < all.size()) {
    std::vector<int64_t> first(static_cast<size_t>(limit));
    for (int64_t i = 0; i < limit; ++i) first[static_cast<size_t>(i)] = i;
    subset = std::make_unique<SubsetSource>(all, first);
    source = subset.get();
  }
  bar = std::make_unique<ProgressBar>("evaluating");
  eval.on_progress = bar->callback();
  const EvalResult r = evaluate_model(model.net, *source, eval);
  bar.reset();

  const int64_t k = model.arch.num_classes;
  const auto* confusion = r.confusion.data_ptr<int64_t>();
  nlohmann::json mistakes = nlohmann::json::array();
  for (size_t i = 0; i < r.samples.size(); ++i) {
    const EvalSample& s = r.samples[i];
    if (s.predicted == s.label) continue;
    mistakes.push_back({{"index", i},
                        {"source", json_path(source->source(static_cast<int64_t>(i)))},
                        {"true", s.label},
                        {"true_name", names[static_cast<size_t>(s.label)]},
                        {"predicted", s.predicted},
                        {"predicted_name", names[static_cast<size_t>(s.predicted)]},
                        {"true_logit", s.label_logit},
                        {"predicted_logit", s.predicted_logit}});
  }
  if (json) {
    nlohmann::json matrix = nlohmann::json::array();
    for (int64_t t = 0; t < k; ++t) {
      nlohmann::json row = nlohmann::json::array();
      for (int64_t p = 0; p < k; ++p) row.push_back(confusion[t * k + p]);
      matrix.push_back(row);
    }
    nlohmann::json out = {{"weights", json_path(model.path)},
                          {"sha256", model.checkpoint.sha256},
                          {"architecture", arch_to_spec(model.arch)},
                          {"precision", precision_name(model.net->precision())},
                          {"dataset", json_path(data_path)},
                          {"dataset_description", data->description()},
                          {"examples", r.count},
                          {"top1", r.top1},
                          {"top5", r.top5},
                          {"loss", r.loss},
                          {"classes", names},
                          {"confusion", matrix},
                          {"misclassified", mistakes}};
    std::cout << to_json_text(out, 2) << "\n";
    return kExitOk;
  }
  std::cout << model.path << " on " << data->description() << ": " << r.count << " examples\n"
            << "top-1 " << fixed(100 * r.top1, 2) << "%  top-5 " << fixed(100 * r.top5, 2) << "%  loss "
            << fixed(r.loss, 4) << "\n\nconfusion (rows: true class, columns: predicted)\n";
  const int width = 6;
  std::cout << std::setw(16) << "";
  for (int64_t p = 0; p < k; ++p) std::cout << std::setw(width) << p;
  std::cout << "  accuracy\n";
  for (int64_t t = 0; t < k; ++t) {
    int64_t total = 0;
    for (int64_t p = 0; p < k; ++p) total += confusion[t * k + p];
    std::cout << std::setw(3) << t << " " << std::left << std::setw(12) << names[static_cast<size_t>(t)].substr(0, 12)
              << std::right;
    for (int64_t p = 0; p < k; ++p) std::cout << std::setw(width) << confusion[t * k + p];
    std::cout << "  " << (total ? fixed(100.0 * double(confusion[t * k + t]) / double(total), 1) + "%" : "-") << "\n";
  }
  std::cout << "\n" << mistakes.size() << " misclassified";
  if (!mistakes.empty() && show > 0) std::cout << " (first " << std::min<size_t>(mistakes.size(), size_t(show)) << ")";
  std::cout << "\n";
  for (size_t i = 0; i < mistakes.size() && i < size_t(show); ++i) {
    const auto& m = mistakes[i];
    std::cout << "  " << path_from_json(m["source"].get<std::string>()) << "  true " << m["true_name"].get<std::string>() << " ("
              << fixed(m["true_logit"].get<double>(), 3) << ")  predicted " << m["predicted_name"].get<std::string>()
              << " (" << fixed(m["predicted_logit"].get<double>(), 3) << ")\n";
  }
  return kExitOk;
}

}  // namespace bagnet::cli
