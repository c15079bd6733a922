// bagnet browse: (re)build the evidence browser of a report folder, and the site flags shared with
// `report --html` and `merge --html`.
#include "commands.h"
#include "options.h"
#include "progress.h"
#include "site_output.h"

#include <bagnet/error.h>
#include <bagnet/render.h>

#include <iostream>

namespace bagnet::cli {

void add_site_flags(cxxopts::Options& options) {
  options.add_options("Evidence browser")
      ("cmap", "colour map of the browser's maps: rdbu_r (red = for, blue = against), or puor_r (colour-blind-safe)",
       cxxopts::value<std::string>()->default_value("rdbu_r"))
      ("title", "page title (default: bagnet-lens and the model file's name)", cxxopts::value<std::string>()->default_value(""));
}

SiteOptions read_site_flags(const cxxopts::ParseResult& parsed) {
  SiteOptions site;
  site.colormap = parsed["cmap"].as<std::string>();
  site.title = parsed["title"].as<std::string>();
  BAGNET_CHECK(find_colormap(site.colormap).diverging, ErrorKind::InvalidArgument, "--cmap ", site.colormap,
               ": the browser needs a diverging colour map (rdbu_r or puor_r)");
  return site;
}

namespace {

void print_site(const SiteResult& site);

}  // namespace

void build_site_with_progress(const std::string& dir, SiteOptions options) {
  ProgressBar bar("site");
  options.on_progress = bar.callback();
  const SiteResult site = build_site(dir, options);
  bar.interrupt();
  print_site(site);
}

void build_site_with_progress(ReportFolder& folder, SiteOptions options) {
  ProgressBar bar("site");
  options.on_progress = bar.callback();
  const SiteResult site = build_site(folder, options);
  bar.interrupt();
  print_site(site);
}

namespace {

void print_site(const SiteResult& site) {
  std::cerr << "wrote " << site.index_html << " (" << site.samples << " samples, " << site.generation << ": "
            << fixed(double(site.bytes) / 1e6, 1) << " MB)\n";
}

}  // namespace

int run_browse(int argc, char** argv) {
  cxxopts::Options options(
      "bagnet browse",
      "(Re)build the evidence browser of a report folder: OUTDIR/index.html, a static site that shows every "
      "decision and every mistake (overview, confusion matrix, samples with their maps and patches, the "
      "confusion-pair atlas). The folder must come from `bagnet report -o OUTDIR --maps` (or --html, or "
      "`bagnet merge --html`). Open index.html in a browser; it needs no server and no network.");
  options.positional_help("OUTDIR");
  add_site_flags(options);
  add_image_limit_flag(options);
  options.add_options("Input")("folder", "report folder", cxxopts::value<std::vector<std::string>>());
  add_help_flag(options);
  options.parse_positional({"folder"});
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv, "  bagnet browse out/report          # then open out/report/index.html\n"
                                          "  bagnet browse out/report --cmap puor_r\n", parsed))
    return kExitOk;
  if (!parsed.count("folder")) throw UsageError("no report folder given");
  const auto folders = parsed["folder"].as<std::vector<std::string>>();
  if (folders.size() != 1) throw UsageError("one report folder, got " + std::to_string(folders.size()));
  read_image_limit_flag(parsed);
  build_site_with_progress(folders.front(), read_site_flags(parsed));
  return kExitOk;
}

}  // namespace bagnet::cli
