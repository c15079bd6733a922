#include "options.h"

#include <bagnet/error.h>
#include <bagnet/labels.h>
#include <bagnet/runtime.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace bagnet::cli {

void add_model_flags(cxxopts::Options& options) {
  options.add_options("Model")
      ("w,weights", "checkpoint or model file (official .pth.tar, zip torch.save, bagnet-lens model; "
       "default: the bundled Fashion-MNIST BagNet)", cxxopts::value<std::string>())
      ("arch", "architecture: bagnet9|bagnet17|bagnet33 or a spec (default: detected from the weights)",
       cxxopts::value<std::string>()->default_value(""))
      ("labels", "class names, one per line (default: the model file's, ImageNet names for 1000-class models)",
       cxxopts::value<std::string>()->default_value(""))
      ("device", "auto|cpu|cuda|cuda:N (auto: CUDA when available)", cxxopts::value<std::string>()->default_value("auto"))
      ("threads", "CPU threads (0: all cores)", cxxopts::value<int>()->default_value("0"));
}

void add_precision_flag(cxxopts::Options& options) {
  options.add_options("Speed")
      ("precision", "float32, or bfloat16 (bf16: about twice as fast on CPUs with AVX512-BF16/AMX and on GPUs; "
       "maps differ from float32 by 1-7% of their largest value, see the README)", cxxopts::value<std::string>()->default_value("float32"));
}

void add_image_flags(cxxopts::Options& options) {
  options.add_options("Image")
      ("resize", "shorter side to N pixels before cropping, none, or auto (the model file's, else 256)",
       cxxopts::value<std::string>()->default_value("auto"))
      ("crop", "centre crop to NxN pixels, none, or auto (the model file's, else 224)",
       cxxopts::value<std::string>()->default_value("auto"));
  add_image_limit_flag(options);
}

void add_image_limit_flag(cxxopts::Options& options) {
  options.add_options("Image")
      ("max-megapixels", "refuse images whose header states more pixels than this, before decoding "
       "(decoding takes about 15 bytes per pixel)",
       cxxopts::value<double>()->default_value(std::to_string(kDefaultMaxImagePixels / 1'000'000)));
}

void add_help_flag(cxxopts::Options& options) {
  options.add_options("")("h,help", "show this help");
}

void add_batch_flags(cxxopts::Options& options) {
  options.add_options("Speed")
      ("batch-size", "images per network pass, or auto (CPU: as many as fit in about 50k input pixels, 64 at 28x28, "
                     "1 at 224x224; CUDA: up to 64 at 224x224); outputs do not depend on it on the CPU",
       cxxopts::value<std::string>()->default_value("auto"))
      ("decode-threads", "threads decoding images ahead of the network", cxxopts::value<int>()->default_value("2"));
}

BatchFlags read_batch_flags(const cxxopts::ParseResult& parsed) {
  BatchFlags flags;
  const std::string batch = parsed["batch-size"].as<std::string>();
  if (batch != "auto") {
    size_t used = 0;
    long long n = 0;
    try {
      n = std::stoll(batch, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != batch.size() || n < 1 || n > 4096)
      throw UsageError("--batch-size must be auto or 1..4096, got '" + batch + "'");
    flags.batch_size = n;
  }
  flags.decode_threads = parsed["decode-threads"].as<int>();
  if (flags.decode_threads < 1 || flags.decode_threads > 64) throw UsageError("--decode-threads must be 1..64");
  return flags;
}

void add_ranking_flags(cxxopts::Options& options) {
  options.add_options("Ranking")
      ("max-iou", "skip a patch overlapping a better one by more than this IoU (1: keep all)",
       cxxopts::value<double>()->default_value("1"))
      ("min-distance", "skip a patch whose centre is closer than this many model-input pixels to a better one",
       cxxopts::value<double>()->default_value("0"));
}

RankOptions read_ranking_flags(const cxxopts::ParseResult& parsed) {
  RankOptions r;
  r.max_iou = parsed["max-iou"].as<double>();
  r.min_distance = parsed["min-distance"].as<double>();
  if (!(r.max_iou >= 0 && r.max_iou <= 1)) throw UsageError("--max-iou must be in [0, 1]");
  if (!(r.min_distance >= 0)) throw UsageError("--min-distance must be >= 0");
  return r;
}

ModelFlags read_model_flags(const cxxopts::ParseResult& parsed) {
  ModelFlags flags;
  if (parsed.count("weights")) {
    flags.weights = parsed["weights"].as<std::string>();
  } else {
    flags.weights = default_model_path();
    if (flags.weights.empty())
      throw UsageError("--weights FILE is required (the bundled default model " BAGNET_DEFAULT_MODEL
                       " was not found beside the program)");
  }
  flags.arch = parsed["arch"].as<std::string>();
  flags.labels = parsed["labels"].as<std::string>();
  flags.device = parsed["device"].as<std::string>();
  flags.threads = parsed["threads"].as<int>();
  if (flags.threads < 0) throw UsageError("--threads must be >= 0");
  return flags;
}

Precision read_precision_flag(const cxxopts::ParseResult& parsed) {
  const std::string name = parsed["precision"].as<std::string>();
  try {
    return parse_precision(name);
  } catch (const Error&) {
    throw UsageError("--precision must be float32 (fp32) or bfloat16 (bf16), got '" + name + "'");
  }
}

ImageFlags read_image_flags(const cxxopts::ParseResult& parsed) {
  read_image_limit_flag(parsed);
  return ImageFlags{parsed["resize"].as<std::string>(), parsed["crop"].as<std::string>()};
}

void read_image_limit_flag(const cxxopts::ParseResult& parsed) {
  const double megapixels = parsed["max-megapixels"].as<double>();
  if (!(megapixels > 0)) throw UsageError("--max-megapixels must be > 0");
  // Beyond int64 the limit is no limit; 9e12 megapixels would not fit the pixel count.
  set_max_image_pixels(megapixels >= 9e12 ? std::numeric_limits<int64_t>::max()
                                          : std::max<int64_t>(1, std::llround(megapixels * 1e6)));
}

namespace {

std::vector<std::string> long_flag_names(const cxxopts::Options& options) {
  std::vector<std::string> names;
  for (const auto& group : options.groups())
    for (const auto& option : options.group_help(group).options)
      for (const auto& name : option.l) names.push_back(name);
  return names;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// " (did you mean --X?)" for the first unknown long flag close to a known one, else "".
std::string flag_suggestion(const std::vector<std::string>& args, const std::vector<std::string>& known) {
  for (const auto& arg : args) {
    if (arg.rfind("--", 0) != 0 || arg.size() < 3) continue;
    const std::string name = arg.substr(2, arg.find('=') - 2);
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string best;
    size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
    for (const auto& candidate : known) {
      const size_t d = candidate.rfind(name, 0) == 0 ? 1 : edit_distance(name, candidate);
      if (d < best_distance) best_distance = d, best = candidate;
    }
    return best.empty() ? "" : " (did you mean --" + best + "?)";
  }
  return "";
}

}  // namespace

bool parse_or_help(cxxopts::Options& options, int argc, char** argv, const std::string& examples,
                   cxxopts::ParseResult& parsed, const std::vector<FlagAlias>& aliases) {
  std::vector<std::string> args(argv, argv + argc);
  for (auto& arg : args)
    for (const auto& alias : aliases) {
      const std::string old_flag = std::string("--") + alias.old_name;
      if (arg == old_flag || arg.rfind(old_flag + "=", 0) == 0) arg = std::string("--") + alias.name + arg.substr(old_flag.size());
    }
  std::vector<const char*> pointers;
  for (const auto& arg : args) pointers.push_back(arg.c_str());
  try {
    parsed = options.parse(static_cast<int>(pointers.size()), pointers.data());
  } catch (const std::exception& e) {
    throw UsageError(e.what() + flag_suggestion(args, long_flag_names(options)));
  }
  if (parsed.count("help")) {
    std::cout << options.help() << "\nExamples:\n" << examples;
    return false;
  }
  if (!parsed.unmatched().empty())
    throw UsageError("unexpected argument '" + parsed.unmatched().front() + "'" +
                     flag_suggestion(parsed.unmatched(), long_flag_names(options)));
  return true;
}

std::string default_model_path() {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("BAGNET_DEFAULT_MODEL"); env && *env) candidates.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / BAGNET_INSTALL_MODEL_DIR / BAGNET_DEFAULT_MODEL);
  candidates.push_back(fs::path(BAGNET_SOURCE_MODEL_DIR) / BAGNET_DEFAULT_MODEL);
  for (const auto& c : candidates)
    if (fs::is_regular_file(c, ec)) return c.string();
  return "";
}

LoadedModel open_model(const ModelFlags& flags) {
  configure_runtime(flags.threads);
  LoadOptions load;
  load.arch = flags.arch;
  load.device = resolve_device(flags.device);
  load.precision = flags.precision;
  return load_model(flags.weights, load);
}

namespace {

std::optional<int64_t> size_option(const std::string& text, const std::string& flag, std::optional<int64_t> fallback) {
  return text == "auto" ? fallback : parse_size_option(text, flag);
}

}  // namespace

InputSpec make_input_spec(const ImageFlags& flags, const LoadedModel& model) {
  InputSpec spec = input_spec_of(model);
  spec.resize = size_option(flags.resize, "--resize", spec.resize);
  spec.crop = size_option(flags.crop, "--crop", spec.crop);
  return spec;
}

std::vector<std::string> model_class_names(const LoadedModel& model, const std::string& labels_path) {
  if (labels_path.empty() && model.meta && !model.meta->class_names.empty() &&
      static_cast<int64_t>(model.meta->class_names.size()) == model.arch.num_classes)
    return model.meta->class_names;
  return class_names_for(model.arch.num_classes, labels_path);
}

// The library names its own option fields in messages; here they become the flags that set them.
std::string in_cli_terms(std::string message) {
  static const std::pair<const char*, const char*> kFlags[] = {
      {"set InputSpec::resize larger, or InputSpec::crop to none", "use a larger --resize, or --crop none"},
      {"LoadOptions::arch chooses", "--arch chooses"},
      {"choose the device spec", "use --device"},
      {"raise it with set_max_image_pixels", "raise it with --max-megapixels"},
  };
  for (const auto& [field, flag] : kFlags)
    for (size_t at = message.find(field); at != std::string::npos; at = message.find(field, at + 1))
      message.replace(at, std::strlen(field), flag);
  return message;
}

std::string fixed(double value, int digits) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << value;
  return out.str();
}

}  // namespace bagnet::cli
