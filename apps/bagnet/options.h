#pragma once
// Flags shared by the subcommands, defined once. Each subcommand adds the groups it needs.
#include <bagnet/image.h>
#include <bagnet/model.h>
#include <bagnet/ranking.h>
#include <bagnet/report.h>

#include <cxxopts.hpp>

#include <string>
#include <vector>

namespace bagnet::cli {

// Exit codes of the bagnet program (documented in README.md and `bagnet --help`).
enum ExitCode : int {
  kExitOk = 0,
  kExitPartial = 1,   // some inputs failed, the others were processed
  kExitUsage = 2,     // bad command line: unknown flag, bad value, unknown class
  kExitBadInput = 3,  // unreadable or corrupt input file, wrong shapes
  kExitRuntime = 4,   // the computation failed (device unavailable, out of memory, ...)
};

// Thrown for command-line mistakes; main() prints it with a hint to --help and returns kExitUsage.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ModelFlags {
  std::string weights, arch, labels, device = "auto";
  int threads = 0;
  Precision precision = Precision::Float32;  // --precision, for the commands that offer it
};

struct ImageFlags {
  std::string resize = "auto", crop = "auto";  // auto: the model file's, else 256 / 224
};

void add_model_flags(cxxopts::Options& options);
// --precision float32|bfloat16 of the inference commands (group "Speed").
void add_precision_flag(cxxopts::Options& options);
// --resize, --crop and --max-megapixels.
void add_image_flags(cxxopts::Options& options);
// --max-megapixels alone, for commands that decode stored pictures but take no images (browse, merge).
void add_image_limit_flag(cxxopts::Options& options);
void add_help_flag(cxxopts::Options& options);
// --batch-size and --decode-threads of the dataset loops (batch_pipeline.h).
void add_batch_flags(cxxopts::Options& options);
// --max-iou, --min-distance: overlap suppression of ranked patches (report, patches).
void add_ranking_flags(cxxopts::Options& options);

ModelFlags read_model_flags(const cxxopts::ParseResult& parsed);
// For commands that called add_precision_flag. UsageError for an unknown precision.
Precision read_precision_flag(const cxxopts::ParseResult& parsed);
// Also applies --max-megapixels (read_image_limit_flag).
ImageFlags read_image_flags(const cxxopts::ParseResult& parsed);
// Sets the library's process-wide image size limit (set_max_image_pixels) from --max-megapixels:
// every decoding path reads it, datasets and the evidence browser included. UsageError for <= 0.
void read_image_limit_flag(const cxxopts::ParseResult& parsed);
RankOptions read_ranking_flags(const cxxopts::ParseResult& parsed);

struct BatchFlags {
  int64_t batch_size = 0;   // images per network pass; 0: the device's default (batch_size_for)
  int decode_threads = 2;   // threads decoding images ahead of the network
};
BatchFlags read_batch_flags(const cxxopts::ParseResult& parsed);

// An older spelling of a long flag that is still accepted (`--out` for `--output`).
struct FlagAlias {
  const char* old_name;
  const char* name;
};

// Parses argv (old spellings rewritten by `aliases`); prints help (with the examples) and returns
// false when --help was given. Throws UsageError for unknown flags (suggesting a close one), bad
// values, and arguments the command does not take.
bool parse_or_help(cxxopts::Options& options, int argc, char** argv, const std::string& examples,
                   cxxopts::ParseResult& parsed, const std::vector<FlagAlias>& aliases = {});

// The bundled default model (assets/models/, installed beside the program): the first of
// $BAGNET_DEFAULT_MODEL, <prefix>/share/bagnet-lens/models/<name> relative to the executable, and
// the source tree's assets/models/<name> that exists; "" when none does.
std::string default_model_path();

// Configures threads and loads the model on the chosen device (the default model when no
// --weights was given).
LoadedModel open_model(const ModelFlags& flags);
// The model's input spec (input_spec_of: its model file's, else the defaults) with --resize and
// --crop applied where they are not auto.
InputSpec make_input_spec(const ImageFlags& flags, const LoadedModel& model);

// Class names: --labels when given, else the model file's, else ImageNet's / class_N.
std::vector<std::string> model_class_names(const LoadedModel& model, const std::string& labels_path);

// A library message with its option fields (InputSpec::crop, LoadOptions::arch, ...) replaced by
// the flags that set them; every `error:` line goes through it.
std::string in_cli_terms(std::string message);

// Fixed-precision float formatting for text output.
std::string fixed(double value, int digits);

}  // namespace bagnet::cli
