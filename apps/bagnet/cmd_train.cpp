// bagnet train: trains a BagNet on a dataset (from scratch or fine-tuned from any checkpoint) with
// a checkpoint after every epoch, and writes a self-describing model file (docs/model-format.md).
#include "commands.h"
#include "options.h"
#include "progress.h"

#include <bagnet/json_text.h>
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

// Everything the command line says, checked (parse).
struct TrainRequest {
  std::string data_path, out, checkpoint, val_path, mean_flag, std_flag, command_line;
  bool resume = false, overwrite = false, json_out = false, new_head = false;
  ImageFlags image_flags;
  ModelFlags model_flags;
  TrainOptions opt;
  double val_split = 0;
  int64_t limit = 0, cache_mb = 0;
};

// nullopt after --help. Throws UsageError for bad flags.
std::optional<TrainRequest> parse_train_request(int argc, char** argv) {
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
    return std::nullopt;
  if (!parsed.count("dataset")) throw UsageError("no DATASET given");
  if (!parsed.count("output")) throw UsageError("-o FILE is required");
  TrainRequest r;
  r.data_path = parsed["dataset"].as<std::string>();
  r.out = parsed["output"].as<std::string>();
  r.checkpoint = parsed["checkpoint"].as<std::string>();
  if (r.checkpoint.empty()) r.checkpoint = r.out + ".ckpt";
  r.resume = parsed.count("resume") > 0;
  r.overwrite = parsed.count("overwrite") > 0;
  r.json_out = parsed.count("json") > 0;
  r.new_head = parsed.count("new-head") > 0;
  r.image_flags = read_image_flags(parsed);
  ModelFlags& m = r.model_flags;
  m.weights = parsed.count("weights") ? parsed["weights"].as<std::string>() : "";
  m.arch = parsed["arch"].as<std::string>();
  m.labels = parsed["labels"].as<std::string>();
  m.device = parsed["device"].as<std::string>();
  m.threads = parsed["threads"].as<int>();
  if (m.threads < 0) throw UsageError("--threads must be >= 0");
  if (m.weights.empty() && m.arch.empty()) throw UsageError("give --arch SPEC (train from scratch) or --weights FILE (fine-tune)");
  TrainOptions& opt = r.opt;
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
  opt.checkpoint_path = r.checkpoint;
  if (m.weights.empty() && (opt.head_only || r.new_head)) throw UsageError("--head-only and --new-head need --weights FILE");
  r.val_split = parsed["val-split"].as<double>();
  r.val_path = parsed["val"].as<std::string>();
  r.limit = parsed["limit"].as<int64_t>();
  r.cache_mb = parsed["cache-mb"].as<int64_t>();
  r.mean_flag = parsed["mean"].as<std::string>();
  r.std_flag = parsed["std"].as<std::string>();
  if (r.val_split < 0 || r.val_split >= 1) throw UsageError("--val-split must be in [0, 1)");
  if (r.val_split > 0 && !r.val_path.empty()) throw UsageError("give --val or --val-split, not both");
  if (r.limit < 0) throw UsageError("--limit must be >= 0");
  r.command_line = "bagnet train";
  for (int i = 1; i < argc; ++i) r.command_line += " " + shell_quote(argv[i]);
  return r;
}

// The network to train: fresh, or initialised from a checkpoint with a new classifier where the
// class count differs or --new-head asks for one (plan).
struct InitialNetwork {
  Arch arch;
  BagNet net{nullptr};
  std::optional<ModelMeta> meta;  // of the initial model file
  std::string sha256;             // of the initial checkpoint
  bool new_head = false;
};

InitialNetwork plan_network(const TrainRequest& r, int64_t classes) {
  InitialNetwork n;
  const ModelFlags& m = r.model_flags;
  Checkpoint init;
  if (!m.weights.empty()) {
    init = read_checkpoint(m.weights);
    n.meta = model_meta(init, m.weights);
    n.sha256 = init.sha256;
    n.arch = !m.arch.empty() ? parse_arch(m.arch) : n.meta ? n.meta->arch : detect_arch(init.tensors);
  } else {
    n.arch = parse_arch(m.arch);
  }
  const int64_t checkpoint_classes = n.arch.num_classes;
  n.arch.num_classes = classes;
  name_arch(n.arch);
  n.net = BagNet(n.arch);
  init_weights(n.net, r.opt.seed);
  if (!m.weights.empty()) {
    n.new_head = r.new_head || checkpoint_classes != classes;
    try {
      load_backbone(n.net, init.tensors, !n.new_head);
    } catch (const Error& e) {
      throw Error(e.kind(), m.weights + ": " + e.what());
    }
  }
  return n;
}

// Training and validation examples: all of DATASET, or a seeded split (--val-split) and subset
// (--limit), or a separate validation dataset (plan).
struct Sources {
  std::unique_ptr<DatasetSource> all;
  std::unique_ptr<Dataset> val_data;
  std::unique_ptr<ExampleSource> val, train_subset;
  const ExampleSource* train = nullptr;
  std::string validation = "none";
};

Sources plan_sources(const TrainRequest& r, const Dataset& data, const DatasetOptions& data_options, const InputSpec& prep) {
  Sources s;
  std::unique_ptr<ProgressBar> loading = std::make_unique<ProgressBar>("loading");
  s.all = std::make_unique<DatasetSource>(data, prep, r.cache_mb, loading->callback());
  loading.reset();
  s.train = s.all.get();
  const DatasetSource& all = *s.all;
  std::vector<int64_t> order(static_cast<size_t>(all.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  if (r.val_split > 0 || r.limit > 0) {
    // A split that depends only on the seed, so a resumed run sees the same examples.
    const auto gen = at::make_generator<at::CPUGeneratorImpl>(r.opt.seed ^ 0x5eed5eedull);
    const torch::Tensor perm = torch::randperm(all.size(), gen, torch::kLong);
    order.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + perm.numel());
  }
  const int64_t held = static_cast<int64_t>(std::llround(r.val_split * double(all.size())));
  if (held > 0) {
    s.val = std::make_unique<SubsetSource>(all, std::vector<int64_t>(order.end() - held, order.end()));
    order.resize(order.size() - static_cast<size_t>(held));
    s.validation = "held-out " + fixed(r.val_split, 3) + " of the training data (" + std::to_string(held) + " examples)";
  }
  if (r.limit > 0 && r.limit < static_cast<int64_t>(order.size())) order.resize(static_cast<size_t>(r.limit));
  if (held > 0 || r.limit > 0) {
    std::sort(order.begin(), order.end());
    s.train_subset = std::make_unique<SubsetSource>(all, order);
    s.train = s.train_subset.get();
  }
  if (!r.val_path.empty()) {
    s.val_data = open_dataset(r.val_path, data_options);
    BAGNET_CHECK(s.val_data->class_names().empty() || data.class_names().empty() ||
                     s.val_data->class_names() == data.class_names(),
                 ErrorKind::BadInput, r.val_path, ": its classes differ from the training data's");
    std::unique_ptr<ProgressBar> bar = std::make_unique<ProgressBar>("loading validation");
    s.val = std::make_unique<DatasetSource>(*s.val_data, prep, r.cache_mb, bar->callback());
    s.validation = s.val_data->description();
  }
  return s;
}

// Per-batch progress bar and one line per epoch on stderr.
void report_progress(TrainOptions& opt, const std::string& checkpoint, std::unique_ptr<ProgressBar>& bar, LogProgress& log) {
  opt.on_progress = [&bar, &log](const TrainProgress& p) {
    if (p.batch == 1) bar = std::make_unique<ProgressBar>("epoch " + std::to_string(p.epoch) + "/" + std::to_string(p.epochs));
    bar->update({p.batch, p.batches, "loss " + fixed(p.loss, 4) + " acc " + percent(p.top1)});
    log.update(p);
  };
  const int64_t epochs = opt.epochs;
  opt.on_epoch = [&bar, epochs, checkpoint](const EpochStats& s) {
    bar.reset();
    std::cerr << "epoch " << s.epoch << "/" << epochs << "  loss " << fixed(s.train_loss, 4) << "  train "
              << percent(s.train_top1);
    if (!std::isnan(s.val_top1))
      std::cerr << "  val " << percent(s.val_top1) << " (top-5 " << percent(s.val_top5) << ", loss "
                << fixed(s.val_loss, 4) << ")";
    std::cerr << "  lr " << s.lr << "  " << fixed(s.seconds, 1) << " s  [checkpoint " << checkpoint << "]" << std::endl;
  };
}

// The run's history and final numbers, added to the provenance a model file carries.
void add_results(nlohmann::json& provenance, const TrainResult& result) {
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
  auto optional = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  provenance["history"] = history;
  provenance["final"] = {{"train_loss", last.train_loss}, {"train_top1", last.train_top1},
                         {"val_top1", optional(last.val_top1)}, {"val_top5", optional(last.val_top5)}};
  provenance["training_seconds"] = train_seconds;
  provenance["resumed_epochs"] = result.resumed_epochs;
  provenance["finished"] = utc_now();
}

}  // namespace

int run_train(int argc, char** argv) {
  const auto parsed = parse_train_request(argc, argv);
  if (!parsed) return kExitOk;
  TrainRequest r = *parsed;
  if (r.resume && !std::filesystem::exists(r.checkpoint)) fail(ErrorKind::BadInput, r.checkpoint, ": no checkpoint to resume from");
  check_output_paths({r.out, r.checkpoint}, r.resume, r.overwrite);
  configure_runtime(r.model_flags.threads);
  r.opt.device = resolve_device(r.model_flags.device);
  const auto started = std::chrono::steady_clock::now();

  // Plan: data and class names, the network, its input, the examples.
  DatasetOptions data_options;
  if (!r.model_flags.labels.empty()) data_options.class_names = read_class_names(r.model_flags.labels);
  const std::unique_ptr<Dataset> data = open_dataset(r.data_path, data_options);
  const int64_t classes = dataset_class_count(*data);
  BAGNET_CHECK(classes >= 2, ErrorKind::BadInput, r.data_path, ": needs labelled examples of at least 2 classes");
  std::vector<std::string> names = data->class_names();
  if (names.empty())
    for (int64_t c = 0; c < classes; ++c) names.push_back("class_" + std::to_string(c));
  InitialNetwork init = plan_network(r, classes);
  const Arch& arch = init.arch;
  std::string normalisation;
  const InputSpec prep = plan_input_spec(r.image_flags, r.mean_flag, r.std_flag, arch, init.meta,
                                         !r.model_flags.weights.empty(), *data, normalisation);
  for (size_t c = 0; c < prep.mean.size(); ++c) r.opt.fill.push_back(-prep.mean[c] / prep.std[c]);
  const Sources sources = plan_sources(r, *data, data_options, prep);

  nlohmann::json provenance = {
      {"tool", bagnet_version()},
      {"torch_version", torch_version()},
      {"command", r.command_line},
      {"data", r.data_path},
      {"data_description", data->description()},
      {"train_examples", sources.train->size()},
      {"validation", sources.validation},
      {"seed", r.opt.seed},
      {"epochs", r.opt.epochs},
      {"recipe", nlohmann::json::parse(recipe_json(r.opt, sources.train->size()))},
      {"normalisation", normalisation},
      {"initial_weights", r.model_flags.weights.empty()
                              ? nlohmann::json(nullptr)
                              : nlohmann::json{{"file", r.model_flags.weights}, {"sha256", init.sha256}, {"new_head", init.new_head}}},
      {"device", device_description(r.opt.device)},
  };
  ModelMeta meta;
  meta.arch = arch;
  meta.class_names = names;
  meta.input = prep;
  meta.training = to_json_text(provenance);
  r.opt.checkpoint_meta = meta;

  // Run.
  std::cerr << "training " << arch_to_spec(arch) << " (q = " << receptive_field(arch) << ", stride "
            << total_stride(arch) << ", " << parameter_count(arch) << " parameters) on " << sources.train->size()
            << " examples of " << data->description() << "; validation: " << sources.validation << "\n";
  if (r.resume) std::cerr << "resuming from " << r.checkpoint << "\n";
  std::unique_ptr<ProgressBar> bar;
  LogProgress log;
  report_progress(r.opt, r.checkpoint, bar, log);
  const TrainResult result = train_model(init.net, *sources.train, sources.val.get(), r.opt, r.resume ? r.checkpoint : "");

  add_results(provenance, result);
  meta.training = to_json_text(provenance);
  save_model_file(r.out, state_dict_of(init.net), meta);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cerr << "wrote " << r.out << " (" << std::filesystem::file_size(r.out) << " bytes) after " << fixed(seconds, 1)
            << " s\n";
  if (r.json_out) {
    nlohmann::json summary = {{"model", r.out}, {"checkpoint", r.checkpoint}, {"architecture", arch_to_spec(arch)},
                              {"receptive_field", receptive_field(arch)}, {"stride", total_stride(arch)},
                              {"training", provenance}};
    std::cout << to_json_text(summary, 2) << "\n";
  }
  return kExitOk;
}

}  // namespace bagnet::cli
