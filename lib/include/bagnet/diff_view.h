#pragma once
// What `bagnet diff` shows (OpenCV part; diff.h computes it): the picture of one changed decision
// (the image, each model's margin map and their difference on one colour scale, the strongest
// cells of the difference outlined) and a static HTML page of a whole diff.
//
//   bagnet::ImageDiff d = bagnet::diff_image(a, b, input_a, input_b, label, options);
//   if (d.shift) save_image("change.png", bagnet::render_diff_figure(input_a.original, input_a.transform,
//                                                                    *d.shift, names).bgr());
#include <bagnet/diff.h>
#include <bagnet/render.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace bagnet {

// Panels: image (model input) | B's margin map | A's margin map | difference, margins of class
// a = shift.to_class over b = shift.from_class in logits, one symmetric scale (p99 of all three
// maps pooled). Cells toward A are outlined solid, cells toward B dashed, on the image and on the
// difference. `original`, `transform`: as in ModelInput (the A model's). `names`: class names
// (index -> name). Throws Error(InvalidArgument) when the maps do not fit the transform.
Figure render_diff_figure(const cv::Mat& original, const ImageTransform& transform, const EvidenceShift& shift,
                          const std::vector<std::string>& names, const std::string& colormap = "rdbu_r");

// Writes `dir`/index.html (atomically): the summary of `diff` (a diff.json document: accuracies,
// McNemar test, per-class table, most frequent moves) and every changed decision of
// `dir`/changes.jsonl grouped by kind, with its figure when it has one. Self-contained (inline
// CSS, no script), in the evidence browser's style; every text from the files is escaped.
// Throws Error(BadInput) for a damaged changes.jsonl (file and line).
void write_diff_page(const std::string& dir, const nlohmann::json& diff);

}  // namespace bagnet
