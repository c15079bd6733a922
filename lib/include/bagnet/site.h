#pragma once
// The evidence browser (OpenCV part): a static, self-contained HTML site over a report folder that
// shows every decision and every mistake of a run (docs/evidence-browser.md).
//
//   // after `bagnet report DATASET -o out --maps` (reports.jsonl, summary.json, maps/, images/):
//   bagnet::SiteResult site = bagnet::build_site("out", bagnet::SiteOptions{});
//   // open out/index.html
//
// The report folder needs each sample's raw maps (maps/NNNNNN.npz) and image (images/NNNNNN.*),
// which `bagnet report --maps` writes with save_sample_image() and save_npz().
#include <bagnet/evidence.h>
#include <bagnet/report_folder.h>

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>

namespace bagnet {

struct SiteOptions {
  std::string colormap = "rdbu_r";   // diverging colour map of the maps; "puor_r" is colour-blind-safe
  double percentile = 99;            // each sample's maps share one scale: this percentile of |value|
  int64_t matrix_classes = 40;       // confusion matrix: every class up to this many, else those with most mistakes
  int64_t atlas_pairs = 12;          // confusion pairs in the atlas, most frequent first
  int64_t atlas_patches = 24;        // margin patches shown per pair
  int64_t class_patches = 12;        // most informative patches shown per class
  int64_t thumbnail = 96;            // thumbnails' long side in pixels
  std::string title;                 // page title; empty: "bagnet-lens · <model file name>"
  ProgressCallback on_progress;      // called after each sample
};

struct SiteResult {
  std::string index_html;            // path of the written index.html
  std::string generation;            // the site folder it points at, e.g. "site-3"
  int64_t samples = 0;
  uint64_t bytes = 0;                // size of the generation folder (images and raw maps not included)
};

// Builds the site of `report_dir` (reports.jsonl + summary.json + maps/ + images/) into a new
// generation folder, then replaces index.html atomically and removes older generations. Throws
// Error(BadInput) when the folder is not a report, holds another report version, or lacks a
// sample's raw maps or image; the previous site stays intact then.
// Takes the folder's writers' lock (report_folder.h) while it builds.
SiteResult build_site(const std::string& report_dir, const SiteOptions& options = {});
// The same into a folder its caller already holds open to write (report --html, merge's staging).
SiteResult build_site(ReportFolder& folder, const SiteOptions& options = {});

// Stores a sample's original image `rgb` (CV_32FC3 RGB or CV_32FC1 grey, values in [0, 1]) as
// `dir`/NNNNNN.png (long side <= 128 px) or .jpg (larger; scaled so the long side is <= 512 px).
// Returns the file name (without `dir`).
std::string save_sample_image(const cv::Mat& rgb, const std::string& dir, int64_t index);

// "000017": a sample's index zero-padded to at least 6 digits, the stem of its files.
std::string sample_stem(int64_t index);

}  // namespace bagnet
