// bagnet train: trains a BagNet on a dataset (from scratch or fine-tuned from any checkpoint) with
// a checkpoint after every epoch, and writes a self-describing model file (docs/model-format.md).
#include "commands.h"
#include "options.h"
#include "progress.h"

#include <bagnet/dataset.h>
#include <bagnet/error.h>
#include <bagnet/labels.h>
#include <bagnet/runtime.h>
#include <bagnet/sha256.h>
#include <bagnet/train.h>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <unistd.h>

namespace bagnet::cli {
namespace {

// Before any work: the folders of the outputs exist and are writable, and a model file or
// checkpoint of another run is not replaced unless asked (--resume continues it instead).
void check_output_paths(const std::vector<std::string>& paths, bool resume, bool overwrite) {
  namespace fs = std::filesystem;
  if (resume && overwrite) throw UsageError("give --resume (continue the checkpoint) or --overwrite (start afresh), not both");
  for (const auto& path : paths) {
    const fs::path folder = fs::absolute(path).parent_path();
    std::error_code ec;
    BAGNET_CHECK(fs::is_directory(folder, ec), ErrorKind::BadInput, path, ": the folder ", folder.string(),
                 " does not exist (create it first)");
    BAGNET_CHECK(::access(folder.c_str(), W_OK) == 0, ErrorKind::BadInput, path, ": the folder ", folder.string(),
                 " is not writable");
    BAGNET_CHECK(!fs::is_directory(path, ec), ErrorKind::BadInput, path, ": is a folder, expected a file name");
    if (!resume && !overwrite && fs::exists(path, ec))
      throw UsageError(path + " exists (from an earlier run); --resume continues that run, --overwrite starts afresh");
  }
}


std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}

std::string percent(double fraction) { return fixed(100.0 * fraction, 2) + "%"; }

std::vector<float> parse_floats(const std::string& text, const std::string& flag) {
  std::vector<float> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stof(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw UsageError(flag + " expects comma-separated numbers, got '" + text + "'");
    }
  }
  return out;
}

// Prints a line every 10% of an epoch when stderr is not a terminal (log files of long runs).
class LogProgress {
 public:
  LogProgress() : enabled_(isatty(STDERR_FILENO) == 0) {}
  void update(const TrainProgress& p) {
    if (!enabled_) return;
    const int64_t tenth = std::max<int64_t>(1, p.batches / 10);
    if (p.batch % tenth != 0 || p.batch == p.batches) return;
    std::cerr << "  epoch " << p.epoch << "/" << p.epochs << "  batch " << p.batch << "/" << p.batches << "  loss "
              << fixed(p.loss, 4) << "  acc " << percent(p.top1) << "  lr " << p.lr << std::endl;
  }

 private:
  bool enabled_;
};

// The model's input: sizes from the flags, else the initial model file's, the defaults (other
// checkpoints) or the first image's shorter side (from scratch); normalisation from the flags, the
// initial model file, ImageNet's (RGB checkpoints) or estimated from the training data.
InputSpec plan_input_spec(const ImageFlags& flags, const std::string& mean_flag, const std::string& std_flag,
                          const Arch& arch, const std::optional<ModelMeta>& init_meta, bool from_checkpoint,
                          const Dataset& data, std::string& normalisation) {
  InputSpec spec = init_meta ? init_meta->input : default_input_spec(arch.in_channels);
  if (!init_meta && !from_checkpoint) {
    const cv::Mat first = data.image(0);
    spec.resize = spec.crop = std::min(first.rows, first.cols);
  }
  if (flags.resize != "auto") spec.resize = parse_size_option(flags.resize, "--resize");
  if (flags.crop != "auto") spec.crop = parse_size_option(flags.crop, "--crop");
  if (mean_flag.empty() != std_flag.empty()) throw UsageError("give both --mean and --std, or neither");
  if (!mean_flag.empty()) {
    spec.mean = parse_floats(mean_flag, "--mean");
    spec.std = parse_floats(std_flag, "--std");
    normalisation = "given";
  } else if (init_meta) {
    normalisation = "from the initial model file";
  } else if (from_checkpoint && spec.channels == 3) {
    normalisation = "ImageNet";  // default_input_spec's
  } else {
    spec.mean.assign(size_t(spec.channels), 0.5f);
    estimate_normalisation(data, spec);
    normalisation = "estimated from the training data";
  }
  if (static_cast<int64_t>(spec.mean.size()) != spec.channels || static_cast<int64_t>(spec.std.size()) != spec.channels)
    throw UsageError("--mean/--std need " + std::to_string(spec.channels) + " values");
  return spec;
}

}  // namespace

int run_train(int argc, char** argv) {
  cxxopts::Options options(
      "bagnet train",
      "Train a BagNet on DATASET: a folder of class folders, a CSV of path,label, or an *-images-idx3-ubyte[.gz] "
      "file. From scratch (--arch SPEC) or fine-tuned from a checkpoint (--weights FILE; a new classifier when the "
      "class count differs or with --new-head). Writes a checkpoint after every epoch (--resume continues it) and "
      "the final model file (-o).");
  options.positional_help("DATASET");
  add_model_flags(options);
  add_image_flags(options);
  options.add_options("Training")
      ("o,output", "model file to write (also --out)", cxxopts::value<std::string>())
      ("checkpoint", "per-epoch checkpoint (default: OUT.ckpt)", cxxopts::value<std::string>()->default_value(""))
      ("resume", "continue from the checkpoint (same options; the finished epochs are kept)")
      ("overwrite", "start afresh even if the model file or checkpoint exists (default: refuse)")
      ("epochs", "epochs", cxxopts::value<int64_t>()->default_value("10"))
      ("batch-size", "examples per step", cxxopts::value<int64_t>()->default_value("128"))
      ("optimizer", "sgd|adam", cxxopts::value<std::string>()->default_value("sgd"))
      ("lr", "peak learning rate", cxxopts::value<double>()->default_value("0.05"))
      ("momentum", "SGD momentum", cxxopts::value<double>()->default_value("0.9"))
      ("nesterov", "Nesterov momentum")
      ("weight-decay", "L2 weight decay", cxxopts::value<double>()->default_value("5e-4"))
      ("schedule", "learning-rate schedule per step: cosine|step|constant",
       cxxopts::value<std::string>()->default_value("cosine"))
      ("warmup", "epochs of linear warm-up", cxxopts::value<int64_t>()->default_value("0"))
      ("step-epochs", "step schedule: epochs between decays", cxxopts::value<int64_t>()->default_value("30"))
      ("step-gamma", "step schedule: factor per decay", cxxopts::value<double>()->default_value("0.1"))
      ("shift", "augmentation: random translation by up to N pixels", cxxopts::value<int64_t>()->default_value("0"))
      ("flip", "augmentation: random horizontal flips")
      ("new-head", "fine-tuning: a fresh classifier even when the class count is unchanged")
      ("head-only", "fine-tuning: train only the classifier")
      ("seed", "seed of initialisation, shuffling and augmentation", cxxopts::value<uint64_t>()->default_value("0"))
      ("val", "validation dataset, evaluated after every epoch", cxxopts::value<std::string>()->default_value(""))
      ("val-split", "hold out this fraction of DATASET for validation instead", cxxopts::value<double>()->default_value("0"))
      ("limit", "train on a random subset of N examples (0: all)", cxxopts::value<int64_t>()->default_value("0"))
      ("mean", "normalisation mean per channel (default: estimated from the data, or the checkpoint's)",
       cxxopts::value<std::string>()->default_value(""))
      ("std", "normalisation std per channel (default: as --mean)", cxxopts::value<std::string>()->default_value(""))
      ("cache-mb", "keep preprocessed images in memory up to this size", cxxopts::value<int64_t>()->default_value("2048"))
      ("json", "print a JSON summary on stdout")
      ("dataset", "training data", cxxopts::value<std::string>());
  add_help_flag(options);
  options.parse_positional({"dataset"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv,
                     "  F=/usr/share/datasets/fashion-mnist\n"
                     "  bagnet train $F/train-images-idx3-ubyte.gz --val $F/t10k-images-idx3-ubyte.gz \\\n"
                     "      --arch blocks=2-2-2-2,kernel3=1-1-0-0,strides=2-1-1-1,widths=16-32-64-64,stem=32,in=1 \\\n"
                     "      --labels assets/fashion-mnist-classes.txt --epochs 6 --shift 2 --flip -o fmnist.pt\n"
                     "  bagnet train ... -o fmnist.pt --resume            # after an interruption\n"
                     "  bagnet train pets/ --weights bagnet32-2ddd53ed.pth.tar --head-only --lr 0.01 -o pets.pt\n",
                     parsed, {{"out", "output"}}))
    return kExitOk;
  if (!parsed.count("dataset")) throw UsageError("no DATASET given");
  if (!parsed.count("output")) throw UsageError("-o FILE is required");
  const std::string data_path = parsed["dataset"].as<std::string>();
  const std::string out = parsed["output"].as<std::string>();
  std::string checkpoint = parsed["checkpoint"].as<std::string>();
  if (checkpoint.empty()) checkpoint = out + ".ckpt";
  const bool resume = parsed.count("resume") > 0;
  const bool json_out = parsed.count("json") > 0;
  const ImageFlags image_flags = read_image_flags(parsed);
  ModelFlags model_flags;
  model_flags.weights = parsed.count("weights") ? parsed["weights"].as<std::string>() : "";
  model_flags.arch = parsed["arch"].as<std::string>();
  model_flags.labels = parsed["labels"].as<std::string>();
  model_flags.device = parsed["device"].as<std::string>();
  model_flags.threads = parsed["threads"].as<int>();
  if (model_flags.threads < 0) throw UsageError("--threads must be >= 0");
  if (model_flags.weights.empty() && model_flags.arch.empty())
    throw UsageError("give --arch SPEC (train from scratch) or --weights FILE (fine-tune)");

  TrainOptions opt;
  opt.epochs = parsed["epochs"].as<int64_t>();
  opt.batch_size = parsed["batch-size"].as<int64_t>();
  opt.optimizer = parse_optimizer(parsed["optimizer"].as<std::string>());
  opt.lr = parsed["lr"].as<double>();
  opt.momentum = parsed["momentum"].as<double>();
  opt.nesterov = parsed.count("nesterov") > 0;
  opt.weight_decay = parsed["weight-decay"].as<double>();
  opt.schedule = parse_schedule(parsed["schedule"].as<std::string>());
  opt.warmup_epochs = parsed["warmup"].as<int64_t>();
  opt.step_epochs = parsed["step-epochs"].as<int64_t>();
  opt.step_gamma = parsed["step-gamma"].as<double>();
  opt.augment_shift = parsed["shift"].as<int64_t>();
  opt.augment_flip = parsed.count("flip") > 0;
  opt.head_only = parsed.count("head-only") > 0;
  opt.seed = parsed["seed"].as<uint64_t>();
  opt.checkpoint_path = checkpoint;
  const double val_split = parsed["val-split"].as<double>();
  const std::string val_path = parsed["val"].as<std::string>();
  const int64_t limit = parsed["limit"].as<int64_t>();
  const int64_t cache_mb = parsed["cache-mb"].as<int64_t>();
  if (val_split < 0 || val_split >= 1) throw UsageError("--val-split must be in [0, 1)");
  if (val_split > 0 && !val_path.empty()) throw UsageError("give --val or --val-split, not both");
  if (limit < 0) throw UsageError("--limit must be >= 0");
  if (resume && !std::filesystem::exists(checkpoint))
    fail(ErrorKind::BadInput, checkpoint, ": no checkpoint to resume from");
  check_output_paths({out, checkpoint}, resume, parsed.count("overwrite") > 0);

  configure_runtime(model_flags.threads);
  opt.device = resolve_device(model_flags.device);
  const auto started = std::chrono::steady_clock::now();

  // Data and class names.
  DatasetOptions data_options;
  if (!model_flags.labels.empty()) data_options.class_names = read_class_names(model_flags.labels);
  const std::unique_ptr<Dataset> data = open_dataset(data_path, data_options);
  const int64_t classes = dataset_class_count(*data);
  BAGNET_CHECK(classes >= 2, ErrorKind::BadInput, data_path, ": needs labelled examples of at least 2 classes");
  std::vector<std::string> names = data->class_names();
  if (names.empty())
    for (int64_t c = 0; c < classes; ++c) names.push_back("class_" + std::to_string(c));

  // The network: fresh, or initialised from a checkpoint (with a new head where needed).
  Arch arch;
  std::optional<ModelMeta> init_meta;
  Checkpoint init;
  if (!model_flags.weights.empty()) {
    init = read_checkpoint(model_flags.weights);
    init_meta = model_meta(init, model_flags.weights);
    arch = !model_flags.arch.empty() ? parse_arch(model_flags.arch) : init_meta ? init_meta->arch : detect_arch(init.tensors);
  } else {
    arch = parse_arch(model_flags.arch);
  }
  const int64_t checkpoint_classes = arch.num_classes;
  arch.num_classes = classes;
  name_arch(arch);
  BagNet net(arch);
  init_weights(net, opt.seed);
  bool new_head = false;
  if (!model_flags.weights.empty()) {
    new_head = parsed.count("new-head") > 0 || checkpoint_classes != classes;
    try {
      load_backbone(net, init.tensors, !new_head);
    } catch (const Error& e) {
      throw Error(e.kind(), model_flags.weights + ": " + e.what());
    }
    init.tensors.clear();
  } else if (opt.head_only || parsed.count("new-head")) {
    throw UsageError("--head-only and --new-head need --weights FILE");
  }

  std::string normalisation;
  const InputSpec prep = plan_input_spec(image_flags, parsed["mean"].as<std::string>(), parsed["std"].as<std::string>(),
                                         arch, init_meta, !model_flags.weights.empty(), *data, normalisation);
  for (size_t c = 0; c < prep.mean.size(); ++c) opt.fill.push_back(-prep.mean[c] / prep.std[c]);

  std::unique_ptr<ProgressBar> loading = std::make_unique<ProgressBar>("loading");
  const DatasetSource all(*data, prep, cache_mb, loading->callback());
  loading.reset();
  std::unique_ptr<Dataset> val_data;
  std::unique_ptr<ExampleSource> val_source, train_subset;
  const ExampleSource* train_source = &all;
  std::string validation = "none";
  {
    std::vector<int64_t> order(static_cast<size_t>(all.size()));
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    if (val_split > 0 || limit > 0) {
      // A split that depends only on the seed, so a resumed run sees the same examples.
      const auto gen = at::make_generator<at::CPUGeneratorImpl>(opt.seed ^ 0x5eed5eedull);
      const torch::Tensor perm = torch::randperm(all.size(), gen, torch::kLong);
      order.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + perm.numel());
    }
    const int64_t held = static_cast<int64_t>(std::llround(val_split * double(all.size())));
    if (held > 0) {
      val_source = std::make_unique<SubsetSource>(all, std::vector<int64_t>(order.end() - held, order.end()));
      order.resize(order.size() - static_cast<size_t>(held));
      validation = "held-out " + fixed(val_split, 3) + " of the training data (" + std::to_string(held) + " examples)";
    }
    if (limit > 0 && limit < static_cast<int64_t>(order.size())) order.resize(static_cast<size_t>(limit));
    if (held > 0 || limit > 0) {
      std::sort(order.begin(), order.end());
      train_subset = std::make_unique<SubsetSource>(all, order);
      train_source = train_subset.get();
    }
  }
  if (!val_path.empty()) {
    val_data = open_dataset(val_path, data_options);
    BAGNET_CHECK(val_data->class_names().empty() || data->class_names().empty() ||
                     val_data->class_names() == data->class_names(),
                 ErrorKind::BadInput, val_path, ": its classes differ from the training data's");
    std::unique_ptr<ProgressBar> bar = std::make_unique<ProgressBar>("loading validation");
    val_source = std::make_unique<DatasetSource>(*val_data, prep, cache_mb, bar->callback());
    validation = val_data->description();
  }

  std::string command_line = "bagnet train";
  for (int i = 1; i < argc; ++i) command_line += " " + shell_quote(argv[i]);
  nlohmann::json provenance = {
      {"tool", bagnet_version()},
      {"torch_version", torch_version()},
      {"command", command_line},
      {"data", data_path},
      {"data_description", data->description()},
      {"train_examples", train_source->size()},
      {"validation", validation},
      {"seed", opt.seed},
      {"epochs", opt.epochs},
      {"recipe", nlohmann::json::parse(recipe_json(opt, train_source->size()))},
      {"normalisation", normalisation},
      {"initial_weights", model_flags.weights.empty() ? nlohmann::json(nullptr)
                                                      : nlohmann::json{{"file", model_flags.weights},
                                                                       {"sha256", init.sha256},
                                                                       {"new_head", new_head}}},
      {"device", device_description(opt.device)},
  };
  ModelMeta meta;
  meta.arch = arch;
  meta.class_names = names;
  meta.input = prep;
  meta.training = provenance.dump();
  opt.checkpoint_meta = meta;

  std::cerr << "training " << arch_to_spec(arch) << " (q = " << receptive_field(arch) << ", stride "
            << total_stride(arch) << ", " << parameter_count(arch) << " parameters) on " << train_source->size()
            << " examples of " << data->description() << "; validation: " << validation << "\n";
  if (resume) std::cerr << "resuming from " << checkpoint << "\n";

  std::unique_ptr<ProgressBar> bar;
  LogProgress log;
  opt.on_progress = [&](const TrainProgress& p) {
    if (p.batch == 1) bar = std::make_unique<ProgressBar>("epoch " + std::to_string(p.epoch) + "/" + std::to_string(p.epochs));
    bar->update({p.batch, p.batches, "loss " + fixed(p.loss, 4) + " acc " + percent(p.top1)});
    log.update(p);
  };
  opt.on_epoch = [&](const EpochStats& s) {
    bar.reset();
    std::cerr << "epoch " << s.epoch << "/" << opt.epochs << "  loss " << fixed(s.train_loss, 4) << "  train "
              << percent(s.train_top1);
    if (!std::isnan(s.val_top1))
      std::cerr << "  val " << percent(s.val_top1) << " (top-5 " << percent(s.val_top5) << ", loss "
                << fixed(s.val_loss, 4) << ")";
    std::cerr << "  lr " << s.lr << "  " << fixed(s.seconds, 1) << " s  [checkpoint " << checkpoint << "]" << std::endl;
  };
  const TrainResult result = train_model(net, *train_source, val_source.get(), opt, resume ? checkpoint : "");

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  nlohmann::json history = nlohmann::json::array();
  double train_seconds = 0;
  for (const auto& s : result.history) {
    nlohmann::json h = {{"epoch", s.epoch}, {"train_loss", s.train_loss}, {"train_top1", s.train_top1},
                        {"lr", s.lr}, {"seconds", s.seconds}};
    if (!std::isnan(s.val_top1)) h.update({{"val_top1", s.val_top1}, {"val_top5", s.val_top5}, {"val_loss", s.val_loss}});
    history.push_back(h);
    train_seconds += s.seconds;
  }
  const EpochStats& last = result.history.back();
  provenance["history"] = history;
  provenance["final"] = {{"train_loss", last.train_loss},
                         {"train_top1", last.train_top1},
                         {"val_top1", std::isnan(last.val_top1) ? nlohmann::json(nullptr) : nlohmann::json(last.val_top1)},
                         {"val_top5", std::isnan(last.val_top5) ? nlohmann::json(nullptr) : nlohmann::json(last.val_top5)}};
  provenance["training_seconds"] = train_seconds;
  provenance["resumed_epochs"] = result.resumed_epochs;
  provenance["finished"] = utc_now();
  meta.training = provenance.dump();
  save_model_file(out, state_dict_of(net), meta);
  std::cerr << "wrote " << out << " (" << std::filesystem::file_size(out) << " bytes) after " << fixed(seconds, 1)
            << " s\n";
  if (json_out) {
    nlohmann::json summary = {{"model", out}, {"checkpoint", checkpoint}, {"architecture", arch_to_spec(arch)},
                              {"receptive_field", receptive_field(arch)}, {"stride", total_stride(arch)},
                              {"training", provenance}};
    std::cout << summary.dump(2) << "\n";
  }
  return kExitOk;
}

}  // namespace bagnet::cli
