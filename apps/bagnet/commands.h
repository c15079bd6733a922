#pragma once
// One function per subcommand (cmd_<name>.cpp); each returns an ExitCode.
namespace bagnet::cli {
int run_info(int argc, char** argv);
int run_predict(int argc, char** argv);
int run_evidence(int argc, char** argv);
int run_patches(int argc, char** argv);
int run_report(int argc, char** argv);
int run_merge(int argc, char** argv);
int run_browse(int argc, char** argv);
int run_train(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_heatmap(int argc, char** argv);
int run_compare(int argc, char** argv);
int run_diff(int argc, char** argv);
}  // namespace bagnet::cli
