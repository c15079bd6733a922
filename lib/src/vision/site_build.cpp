// The evidence browser's build: overview (run, classes, confusion matrix, atlas), the columnar
// sample list, detail chunks, and the switch to the new generation (docs/evidence-browser.md).
#include "site_parts.h"

#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/json_text.h>
#include <bagnet/report.h>
#include <bagnet/report_folder.h>

#include "bagnet_version.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

namespace bagnet {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using detail::ListRow;
using detail::SiteDirs;

constexpr int64_t kChunk = 64;  // samples per detail file

// `call` is the script up to the JSON argument, e.g. "bagnetSite.list(" or "bagnetSite.detail(3, ".
void write_script(const fs::path& path, const std::string& call, const json& data) {
  std::ofstream out(path, std::ios::binary);
  out << call << to_json_text(data) << ");\n";  // never fails on a string that is not UTF-8
  out.close();
  BAGNET_CHECK(out.good(), ErrorKind::Runtime, path.string(), ": write failed (disk full?)");
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  BAGNET_CHECK(out.good(), ErrorKind::Runtime, path.string(), ": write failed (disk full?)");
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

json list_columns(const std::vector<ListRow>& rows) {
  json index = json::array(), truth = json::array(), pred = json::array(), prob = json::array(),
       margin = json::array(), gap = json::array(), flip = json::array(), thumb = json::array(),
       image = json::array(), size = json::array();
  for (const auto& r : rows) {
    index.push_back(r.index);
    truth.push_back(r.truth);
    pred.push_back(r.predicted);
    prob.push_back(detail::round_significant(r.probability));
    margin.push_back(detail::round_significant(r.margin));
    gap.push_back(detail::round_significant(r.gap));
    flip.push_back(r.flip);
    thumb.push_back(r.thumb);
    image.push_back(r.image);
    size.push_back({r.height, r.width});
  }
  return {{"n", rows.size()}, {"index", index}, {"true", truth}, {"pred", pred}, {"prob", prob}, {"margin", margin},
          {"gap", gap}, {"flip", flip}, {"thumb", thumb}, {"image", image}, {"size", size}};
}

json class_table(const std::vector<ListRow>& rows, const std::vector<std::string>& names) {
  std::vector<int64_t> count(names.size()), correct(names.size()), predicted(names.size());
  for (const auto& r : rows) {
    ++predicted[r.predicted];
    if (r.truth < 0) continue;
    ++count[r.truth];
    if (r.truth == r.predicted) ++correct[r.truth];
  }
  json out = json::array();
  for (size_t c = 0; c < names.size(); ++c)
    out.push_back({{"index", c}, {"name", names[c]}, {"count", count[c]}, {"correct", correct[c]},
                   {"predicted", predicted[c]}});
  return out;
}

// The confusion matrix over every class, or, for more than `limit` classes, over at most `limit` of
// the classes the run met (as a true or predicted class), those with most mistakes first.
json confusion_matrix(const std::vector<ListRow>& rows, int64_t num_classes, int64_t limit) {
  std::vector<int64_t> shown;
  if (num_classes <= limit) {
    for (int64_t c = 0; c < num_classes; ++c) shown.push_back(c);
  } else {
    struct Seen { int64_t mistakes = 0, samples = 0, cls = 0; };
    std::vector<Seen> seen(static_cast<size_t>(num_classes));
    for (int64_t c = 0; c < num_classes; ++c) seen[c].cls = c;
    for (const auto& r : rows) {
      ++seen[r.predicted].samples;
      if (r.truth < 0) continue;
      ++seen[r.truth].samples;
      if (r.truth != r.predicted) ++seen[r.truth].mistakes, ++seen[r.predicted].mistakes;
    }
    std::stable_sort(seen.begin(), seen.end(), [](const Seen& a, const Seen& b) {
      return a.mistakes != b.mistakes ? a.mistakes > b.mistakes : a.samples > b.samples;
    });
    for (const Seen& s : seen)
      if (static_cast<int64_t>(shown.size()) < limit && s.samples > 0) shown.push_back(s.cls);
    std::sort(shown.begin(), shown.end());
  }
  std::map<int64_t, size_t> position;
  for (size_t i = 0; i < shown.size(); ++i) position[shown[i]] = i;
  std::vector<std::vector<int64_t>> counts(shown.size(), std::vector<int64_t>(shown.size()));
  for (const auto& r : rows) {
    const auto t = position.find(r.truth), p = position.find(r.predicted);
    if (t != position.end() && p != position.end()) ++counts[t->second][p->second];
  }
  return {{"classes", shown}, {"counts", counts}, {"complete", num_classes <= limit}};
}

json confusion_pairs(const std::vector<ListRow>& rows) {
  std::map<std::pair<int64_t, int64_t>, int64_t> pairs;
  for (const auto& r : rows)
    if (r.truth >= 0 && r.truth != r.predicted) ++pairs[{r.truth, r.predicted}];
  std::vector<std::pair<std::pair<int64_t, int64_t>, int64_t>> sorted(pairs.begin(), pairs.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  json out = json::array();
  for (const auto& [key, count] : sorted) out.push_back({{"true", key.first}, {"pred", key.second}, {"count", count}});
  return out;
}

// The `limit` patches with the highest value among those added, at most `per_sample` from one
// sample, kept bounded while streaming: pruning to the current answer never drops a patch the final
// answer needs (a later patch only pushes the others down).
class TopPatches {
 public:
  TopPatches(int64_t limit, int64_t per_sample) : limit_(limit), per_sample_(per_sample) {}
  void add(double value, json patch) {
    patches_.emplace_back(value, std::move(patch));
    if (static_cast<int64_t>(patches_.size()) > 4 * limit_ + 16) prune();
  }
  json result() {
    prune();
    json out = json::array();
    for (auto& p : patches_) out.push_back(p.second);
    return out;
  }

 private:
  void prune() {
    std::stable_sort(patches_.begin(), patches_.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::map<int64_t, int64_t> used;
    std::vector<std::pair<double, json>> kept;
    for (auto& p : patches_) {
      if (static_cast<int64_t>(kept.size()) >= limit_) break;
      if (++used[json_integer(p.second.at("index"), "atlas patch index")] <= per_sample_) kept.push_back(std::move(p));
    }
    patches_ = std::move(kept);
  }
  int64_t limit_, per_sample_;
  std::vector<std::pair<double, json>> patches_;
};

// What the overview needs from every report, gathered one report at a time: class names as the
// reports give them, the confusion-pair atlas (margin patches across a pair's mistakes, at most 2
// per sample) and each class's most informative patches (its strongest positive patch in each
// sample where it was explained, as `bagnet patches --per-image 1` ranks them).
class RunDigest {
 public:
  // `names`: the model's class names when the summary records them (else taken from the reports).
  RunDigest(int64_t num_classes, const SiteOptions& options, const json& names) : options_(options) {
    for (int64_t c = 0; c < num_classes; ++c) {
      const bool known = names.is_array() && c < static_cast<int64_t>(names.size()) && names[c].is_string();
      names_.push_back(known ? names[c].get<std::string>() : "class " + std::to_string(c));
      by_class_.emplace_back(options.class_patches, 1);
    }
  }

  void add(const json& r) {
    const int64_t index = json_integer(r.at("image").at("index"), "report image.index");
    for (const auto& p : r.at("predictions")) note(p.at("class"), p.at("name"));
    for (const auto& c : r.at("classes")) {
      note(c.at("class"), c.at("name"));
      const json& top = c.at("top_positive");
      const int64_t cls = json_integer(c.at("class"), "report classes[].class");
      if (!top.empty() && cls >= 0 && cls < static_cast<int64_t>(by_class_.size()))
        by_class_[cls].add(detail::json_number(top[0].at("logit"), "report top_positive[].logit"),
                           {{"index", index}, {"cell", top[0].at("cell")}, {"logit", top[0].at("logit")},
                            {"box", top[0].at("box_original")}});
    }
    const json& d = r.at("decision");
    if (!d.is_object() || d.at("correct").get<bool>()) return;
    const auto key = std::make_pair(json_integer(d.at("true_class"), "report decision.true_class"),
                                    json_integer(d.at("predicted"), "report decision.predicted"));
    auto it = by_pair_.try_emplace(key, options_.atlas_patches, 2).first;
    for (const auto& p : d.at("margin_patches"))
      it->second.add(detail::json_number(p.at("margin"), "report margin_patches[].margin"),
                     {{"index", index}, {"cell", p.at("cell")}, {"margin", p.at("margin")}, {"share", p.at("share")},
                      {"box", p.at("box_original")}});
  }

  const std::vector<std::string>& names() const { return names_; }

  json atlas(const json& pairs) {
    json pair_atlas = json::array();
    for (const auto& pair : pairs) {
      if (static_cast<int64_t>(pair_atlas.size()) >= options_.atlas_pairs) break;
      json entry = pair;
      entry["patches"] =
          by_pair_.at({json_integer(pair.at("true"), "confusion pair"), json_integer(pair.at("pred"), "confusion pair")}).result();
      pair_atlas.push_back(entry);
    }
    json class_atlas = json::array();
    for (size_t c = 0; c < by_class_.size(); ++c) {
      json patches = by_class_[c].result();
      if (!patches.empty()) class_atlas.push_back({{"class", c}, {"patches", patches}});
    }
    return {{"pairs", pair_atlas}, {"classes", class_atlas}};
  }

 private:
  void note(const json& cls, const json& name) {
    const int64_t c = json_integer(cls, "report class");
    if (c >= 0 && c < static_cast<int64_t>(names_.size()) && name.is_string()) names_[c] = name.get<std::string>();
  }
  const SiteOptions& options_;
  std::vector<std::string> names_;
  std::vector<TopPatches> by_class_;
  std::map<std::pair<int64_t, int64_t>, TopPatches> by_pair_;
};

json run_numbers(const json& summary, const std::vector<ListRow>& rows) {
  int64_t errors = 0;
  for (const auto& r : rows) errors += (r.truth >= 0 && r.truth != r.predicted) ? 1 : 0;
  const int64_t inputs = summary.value("inputs", static_cast<int64_t>(rows.size()));
  return {{"inputs", inputs},
          {"reports", rows.size()},
          {"labelled", summary.at("labelled")},
          {"correct", summary.at("correct")},
          {"accuracy", summary.at("accuracy")},
          {"top_k", summary.at("top_k")},
          {"top_k_accuracy", summary.at("top_k_accuracy")},
          {"errors", errors},
          {"failed", inputs - static_cast<int64_t>(rows.size())},
          {"shard", summary.contains("shard") ? summary.at("shard") : json(nullptr)}};
}

std::string now_iso() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return text;
}

json colour_stops(const Colormap& cmap) {
  json out = json::array();
  for (int i = 0; i <= 10; ++i) {
    const cv::Vec3b c = cmap.rgb(i / 10.0);
    char hex[8];
    std::snprintf(hex, sizeof hex, "#%02x%02x%02x", c[0], c[1], c[2]);
    out.push_back(hex);
  }
  return out;
}

uint64_t folder_bytes(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

}  // namespace

namespace {

SiteResult build_site_from(ReportFolder& folder, const SiteOptions& options) {
  const std::string& report_dir = folder.dir();
  const Colormap& cmap = find_colormap(options.colormap);
  BAGNET_CHECK(cmap.diverging, ErrorKind::InvalidArgument, "site colour map ", options.colormap,
               " is not diverging (maps hold evidence for and against a class)");
  BAGNET_CHECK(options.thumbnail >= 16 && options.matrix_classes >= 2 && options.percentile > 0 &&
                   options.percentile <= 100,
               ErrorKind::InvalidArgument, "site options: thumbnail >= 16, matrix_classes >= 2 and percentile in (0, 100] required");
  const std::string jsonl = folder.path(report_files::kReports);
  BAGNET_CHECK(folder.has(report_files::kReports), ErrorKind::BadInput, report_dir, ": not a report folder (no reports.jsonl)");
  const json summary = folder.read_summary();
  const json& model = summary.at("model");
  BAGNET_CHECK(model.is_object() && summary.contains("reported") &&
                   json_integer(summary.at("reported"), report_dir + "/summary.json: reported") > 0,
               ErrorKind::BadInput, report_dir, ": the report holds no samples");
  const int64_t num_classes = json_integer(model.at("num_classes"), report_dir + "/summary.json: model.num_classes");

  SiteDirs dirs{&folder, report_dir, "", folder.make_site_generation()};
  dirs.generation = folder.path(dirs.name);

  // One report at a time: memory holds the list columns and bounded atlas candidates, not the run.
  std::vector<ListRow> rows;
  RunDigest digest(num_classes, options, summary.value("class_names", json::array()));
  json settings, first_maps, chunk = json::object();
  int64_t chunk_id = -1;
  auto flush = [&] {
    if (chunk_id >= 0)
      write_script(fs::path(dirs.generation) / "data/detail" / (std::to_string(chunk_id) + ".js"),
                   "bagnetSite.detail(" + std::to_string(chunk_id) + ", ", chunk);
    chunk = json::object();
  };
  const int64_t total = json_integer(summary.at("reported"), report_dir + "/summary.json: reported");
  folder.visit_reports([&](const json& r) {
    BAGNET_CHECK(r.at("model").at("sha256") == model.at("sha256"), ErrorKind::BadInput, jsonl,
                 ": holds reports of another model than its summary.json");
    ListRow row;
    json detail;
    try {
      detail = detail::build_sample(r, dirs, cmap, options, row);
      digest.add(r);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::BadInput || std::string(e.what()).rfind("report ", 0) != 0) throw;
      fail(ErrorKind::BadInput, jsonl, ": ", e.what());  // a field's value: say which file holds it
    }
    BAGNET_CHECK(row.predicted >= 0 && row.predicted < num_classes && row.truth >= -1 && row.truth < num_classes,
                 ErrorKind::BadInput, jsonl, ": sample ", row.index, " names a class outside the model's ", num_classes);
    if (rows.empty()) settings = r.at("settings"), first_maps = r.at("maps");
    if (row.index / kChunk != chunk_id) {
      flush();
      chunk_id = row.index / kChunk;
    }
    chunk[std::to_string(row.index)] = std::move(detail);
    rows.push_back(std::move(row));
    if (options.on_progress) options.on_progress({static_cast<int64_t>(rows.size()), total, "site"});
  });
  flush();
  BAGNET_CHECK(static_cast<int64_t>(rows.size()) == total, ErrorKind::BadInput, jsonl, " holds ", rows.size(),
               " reports, its summary.json says ", total, " (a run still going, or killed before its end?)");

  const json pairs = confusion_pairs(rows);
  const json overview = {
      {"site", {{"version", 1}, {"generation", dirs.name}, {"built", now_iso()}, {"tool", std::string("bagnet-lens ") + BAGNET_VERSION}}},
      {"model", model},
      {"settings", settings},
      {"maps", {{"stride", first_maps.at("stride")}, {"dense", first_maps.at("dense")},
                {"colormap", cmap.name}, {"colors", colour_stops(cmap)}, {"percentile", options.percentile}}},
      {"run", run_numbers(summary, rows)},
      {"classes", class_table(rows, digest.names())},
      {"confusion", confusion_matrix(rows, num_classes, options.matrix_classes)},
      {"pairs", pairs},
      {"atlas", digest.atlas(pairs)},
      // Thumbnails are paths relative to OUTDIR and map pictures data: URLs, so their prefixes are empty.
      {"images", {{"dir", "images/"}, {"thumbs", ""}, {"maps", ""}}}};
  write_script(fs::path(dirs.generation) / "data/overview.js", "bagnetSite.overview(", overview);
  write_script(fs::path(dirs.generation) / "data/list.js", "bagnetSite.list(", list_columns(rows));
  write_text(fs::path(dirs.generation) / "app.js", assets::site_app_js);
  write_text(fs::path(dirs.generation) / "style.css", assets::site_style_css);

  const std::string title = options.title.empty()
                                ? "bagnet-lens · " + fs::path(model.value("file", std::string("model"))).filename().string()
                                : options.title;
  const std::string page = replace_all(replace_all(assets::site_index_html, "@SITE@", dirs.name), "@TITLE@", detail::html_escape(title));
  const std::string index_html = folder.path(report_files::kIndex);
  write_text_atomically(index_html, page);  // the switch: from here on the new generation is live
  folder.remove_site_generations(dirs.name);  // a generation holding other files stays
  return {index_html, dirs.name, static_cast<int64_t>(rows.size()), folder_bytes(dirs.generation)};
}

}  // namespace

SiteResult build_site(ReportFolder& folder, const SiteOptions& options) {
  BAGNET_CHECK(folder.writable(), ErrorKind::InvalidArgument, folder.dir(), ": the site is built into a folder open to write");
  // Report folders may come from strangers: a field missing or of another type is the folder's
  // fault, said in one line, not the JSON library's exception escaping.
  try {
    return build_site_from(folder, options);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::BadInput, folder.dir(), ": a report or summary.json lacks what the browser needs (", e.what(), ")");
  }
}

SiteResult build_site(const std::string& report_dir, const SiteOptions& options) {
  {  // a folder that is not a report is refused before anything (the lock file) is written into it
    const ReportFolder reading = ReportFolder::open(report_dir);
    BAGNET_CHECK(reading.has(report_files::kReports), ErrorKind::BadInput, report_dir, ": not a report folder (no reports.jsonl)");
    reading.read_summary();
  }
  ReportFolder folder = ReportFolder::open_to_write(report_dir, false);
  return build_site(folder, options);
}

}  // namespace bagnet
