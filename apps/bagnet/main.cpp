// bagnet: command-line front end of bagnet-lens. Dispatches to one file per subcommand, maps
// errors to the documented exit codes and prints them as one line on stderr.
#include "commands.h"
#include "options.h"

#include <bagnet/error.h>
#include <bagnet/runtime.h>

#include <opencv2/core/utils/logger.hpp>

#include <cstring>
#include <iostream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <string>

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int, char**);
};

const Command kCommands[] = {
    {"info", "describe a checkpoint: architecture, q, stride, classes, parameters, SHA-256", bagnet::cli::run_info},
    {"predict", "top-k classes with logit and probability for images", bagnet::cli::run_predict},
    {"evidence", "write the per-patch logit map [K, H', W'] of an image as .npy", bagnet::cli::run_evidence},
    {"patches", "most informative patches per class over images/datasets: grid PNGs + JSON", bagnet::cli::run_patches},
    {"report", "JSON evidence reports: what drove each decision, and each mistake", bagnet::cli::run_report},
    {"merge", "combine sharded report folders into one reports.jsonl + summary.json", bagnet::cli::run_merge},
    {"browse", "build the evidence browser (index.html) of a report folder", bagnet::cli::run_browse},
    {"train", "train a BagNet (from scratch or fine-tuned) on an image dataset", bagnet::cli::run_train},
    {"eval", "top-1/top-5 accuracy, confusion matrix and mistakes on a dataset", bagnet::cli::run_eval},
    {"heatmap", "draw evidence maps of images or directories as PNG pictures", bagnet::cli::run_heatmap},
    {"compare", "a BagNet against another network: errors, sensitivity, interactions, deletion", bagnet::cli::run_compare},
    {"diff", "two BagNets on the same data: changed decisions, fixed and new mistakes, where evidence moved", bagnet::cli::run_diff},
};

void print_usage(std::ostream& out) {
  out << "bagnet - make the decisions of BagNets visible\n\n"
         "Usage: bagnet <command> [options]    (bagnet <command> --help for details)\n\nCommands:\n";
  for (const auto& c : kCommands) out << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.summary << "\n";
  out << "\nExamples:\n"
         "  bagnet info --weights bagnet32-2ddd53ed.pth.tar\n"
         "  bagnet predict cat.jpg dog.png --weights bagnet32-2ddd53ed.pth.tar --topk 5\n"
         "  bagnet evidence cat.jpg --weights bagnet32-2ddd53ed.pth.tar --class 281,tabby -o cat.npy\n"
         "  bagnet report cat.jpg --weights bagnet32-2ddd53ed.pth.tar\n"
         "  bagnet report DATASET --weights model.pt -o out/report     (reports.jsonl + summary.json)\n"
         "  bagnet report DATASET -o out/report --html   (then open out/report/index.html)\n"
         "  bagnet patches DATASET --weights model.pt -o out/patches -k 16\n"
         "  bagnet train train-images-idx3-ubyte.gz --arch SPEC --epochs 5 -o model.pt\n"
         "  bagnet eval t10k-images-idx3-ubyte.gz --weights model.pt --json\n"
         "  bagnet heatmap photos/ --weights bagnet32-2ddd53ed.pth.tar --class top -o figures/\n"
         "\nExit codes: 0 ok, 1 some inputs failed, 2 usage error, 3 bad input file, 4 runtime failure\n";
}

// LibTorch allocates every activation anew. By default glibc hands blocks over a few MB straight
// back to the kernel, so each network pass page-faults its activations in again, which dominates
// dataset runs on virtual machines (Fashion-MNIST eval: 12.2 s -> 3.6 s, bench/README.md). Freed
// memory stays in the process instead; the peak is what a run needs at once either way.
void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bagnet::cli;
  keep_freed_memory();
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  if (argc < 2) {
    print_usage(std::cerr);
    return kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(std::cout);
    return kExitOk;
  }
  if (name == "--version") {
    std::cout << bagnet::bagnet_version() << "\n";
    return kExitOk;
  }
  for (const auto& command : kCommands) {
    if (name != command.name) continue;
    try {
      return command.run(argc - 1, argv + 1);
    } catch (const UsageError& e) {
      std::cerr << "error: " << e.what() << " (see bagnet " << name << " --help)\n";
      return kExitUsage;
    } catch (const bagnet::Error& e) {
      std::cerr << "error: " << in_cli_terms(e.what()) << "\n";
      switch (e.kind()) {
        case bagnet::ErrorKind::InvalidArgument: return kExitUsage;
        case bagnet::ErrorKind::BadInput: return kExitBadInput;
        case bagnet::ErrorKind::Runtime: return kExitRuntime;
        case bagnet::ErrorKind::Output: return kExitRuntime;
      }
      return kExitRuntime;
    } catch (const std::exception& e) {
      // LibTorch errors carry a multi-line backtrace; the first line says what happened.
      std::string message = e.what();
      message = message.substr(0, message.find('\n'));
      std::cerr << "error: " << message << "\n";
      return kExitRuntime;
    }
  }
  std::cerr << "error: unknown command '" << name << "' (see bagnet --help)\n";
  return kExitUsage;
}
