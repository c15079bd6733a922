#pragma once
// Pieces of the evidence-browser build shared by site_build.cpp, site_sample.cpp and site_image.cpp.
#include <bagnet/render.h>
#include <bagnet/report_folder.h>
#include <bagnet/site.h>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <string>

namespace bagnet::assets {
// The evidence browser's files, embedded at build time (lib/CMakeLists.txt, BAGNET_SITE_ASSETS).
extern const char* const site_index_html;
extern const char* const site_app_js;
extern const char* const site_style_css;
}  // namespace bagnet::assets

namespace bagnet::detail {

// Folders of one site build.
struct SiteDirs {
  const ReportFolder* folder = nullptr;  // the report folder (reports.jsonl, maps/, images/), read through it
  std::string report;       // its path
  std::string generation;   // report/site-G, being written
  std::string name;         // "site-G"
};

// A PNG of `bgr` as a data: URL (small pictures inline in the data instead of one file each: tens
// of thousands of tiny files cost far more disk blocks and time than their bytes).
std::string png_data_url(const cv::Mat& bgr);

// A finite JSON number of a report folder as a double (json_integer, json_text.h, for integers):
// Error(BadInput) "<what>: expected a finite number, got ..." for anything else.
double json_number(const nlohmann::json& value, const std::string& what);

// Text for HTML (element content and quoted attributes): & < > " escaped.
std::string html_escape(const std::string& text);

// Rounds to `digits` significant digits, so the site's JSON stays short.
double round_significant(double value, int digits = 4);

// One sample of the site: writes its map PNGs and thumbnail into the generation folder and returns
// its detail record (the report's fields plus "view") and fills `row` with its list columns.
struct ListRow {
  int64_t index = 0, truth = -1, predicted = 0, flip = 0;
  double probability = 0, margin = 0, gap = 0;
  std::string thumb, image;
  int64_t height = 0, width = 0;
};
nlohmann::json build_sample(const nlohmann::json& report, const SiteDirs& dirs, const Colormap& cmap,
                            const SiteOptions& options, ListRow& row);

}  // namespace bagnet::detail
