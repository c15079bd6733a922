// bagnet heatmap: evidence pictures (PNG) of many images, in the BagNet paper's style or others,
// on per-image, global or fixed colour scales.
//
// Three stages, kept apart: read_heatmap_flags (every flag checked before anything is loaded),
// plan_heatmap (what needs the model: classes, stride, the pictures to write, refused before any
// work) and the image loop (compute_jobs in batched passes, draw_job per image), then
// print_heatmap_summary.
#include "batch_pipeline.h"
#include "commands.h"
#include "image_files.h"
#include "sample_loop.h"
#include "options.h"
#include "progress.h"
#include "samples.h"

#include <bagnet/json_text.h>
#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/evidence.h>
#include <bagnet/labels.h>
#include <bagnet/npy.h>
#include <bagnet/render.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <numeric>
#include <optional>

namespace fs = std::filesystem;

namespace bagnet::cli {
namespace {

// What --class asked for: the top N predictions, or fixed classes.
struct ClassChoice {
  int top = 0;                    // > 0: the top N predictions of each image
  std::vector<int64_t> fixed;     // otherwise these
};

ClassChoice parse_class_choice(const std::string& text, const std::vector<std::string>& names) {
  ClassChoice choice;
  if (text == "top") {
    choice.top = 1;
  } else if (text.rfind("top:", 0) == 0) {
    const std::string n = text.substr(4);
    const bool digits = !n.empty() && n.size() < 5 && std::all_of(n.begin(), n.end(), ::isdigit);
    choice.top = digits ? std::stoi(n) : 0;
    if (choice.top < 1 || choice.top > static_cast<int>(names.size()))
      throw UsageError("--class top:N needs 1 <= N <= " + std::to_string(names.size()) + ", got '" + text + "'");
  } else {
    if (text == "all") throw UsageError("--class all would draw every class; name the classes, or use top:N");
    choice.fixed = parse_class_list(text, names);
  }
  return choice;
}

std::string slug(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c))
      out += static_cast<char>(std::tolower(c));
    else if (!out.empty() && out.back() != '_')
      out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.substr(0, 40);
}

// One picture to write: its file and which class slots it shows.
struct Output {
  std::string suffix;             // "top1", "281-tabby", "panel", ...
  std::vector<size_t> slots;      // indices into the image's chosen classes
};

struct Job {
  ImageFile file;
  ModelInput input;               // photo and tensor dropped while waiting for a global clip
  MapLayout layout;
  std::vector<int64_t> classes;   // chosen classes of this image (slot order)
  std::vector<float> logits;      // their image logits
  torch::Tensor maps;             // [slots, rows, cols] float32 CPU
  int64_t vs = -1;
  float vs_logit = 0;
  torch::Tensor vs_map;           // [rows, cols]
};

struct Written {
  std::string image, png;
  std::vector<int64_t> classes;
  std::vector<float> logits;      // image logits of `classes`
  double clip;
  std::vector<std::string> titles;  // of the tiles, as drawn
  float vs_logit = 0;
};

// ---- parse ----------------------------------------------------------------------------------

// Every flag, checked; what needs the model to be understood (--class, --vs, --stride) is kept
// as text for plan_heatmap.
struct HeatmapFlags {
  std::vector<std::string> inputs;
  fs::path out_dir;
  ModelFlags model;
  ImageFlags image;
  RenderOptions render;           // clip set only for --scale fixed:V
  ScaleSpec scale;
  std::string scale_text;         // as given, echoed by --json
  std::string class_text, stride_text;
  std::optional<std::string> vs_text;
  int max_memory_mb = 1536;
  BatchFlags batching;
  bool save_maps = false, overwrite = false, json = false;
};

const char* const kHeatmapExamples =
    "  bagnet heatmap cat.jpg --weights bagnet32-2ddd53ed.pth.tar -o figures/\n"
    "  bagnet heatmap photos/ --weights bagnet32-2ddd53ed.pth.tar --class top:3 --style panel -o out/\n"
    "  bagnet heatmap cat.jpg --weights bagnet32-2ddd53ed.pth.tar --class tabby --vs 'tiger cat' -o out/\n"
    "  bagnet heatmap a.png b.png --weights model.pt --class 3 --scale global --stride 1 --npy -o out/\n"
    "  bagnet heatmap big.jpg --weights model.pt --frame original --smooth --cmap puor_r -o out/\n";

void add_heatmap_flags(cxxopts::Options& options) {
  options.positional_help("IMAGE|DIR...");
  add_model_flags(options);
  add_precision_flag(options);
  add_image_flags(options);
  add_batch_flags(options);
  options.add_options("Maps")
      ("class", "top (the prediction), top:N (the top N), or a comma list of indices and/or names",
       cxxopts::value<std::string>()->default_value("top"))
      ("vs", "draw the difference map CLASS-map minus this class's map", cxxopts::value<std::string>())
      ("stride", "native: the model's own patch map (every 8 px for the official BagNets, 2 px for the bundled model); "
                 "N below it: the dense map (a patch centred on every Nth pixel)",
       cxxopts::value<std::string>()->default_value("native"))
      ("max-memory", "dense maps: memory budget in MB for one tile of activations",
       cxxopts::value<int>()->default_value("1536"));
  options.add_options("Picture")
      ("style", "paper (map + edges), overlay (map blended over the photo), panel (photo | maps side by side)",
       cxxopts::value<std::string>()->default_value("paper"))
      ("cmap", "colour map: rdbu_r, puor_r (colour-blind safe), viridis, greys",
       cxxopts::value<std::string>()->default_value("rdbu_r"))
      ("scale", "per-image, global (one clip over all maps of the run) or fixed:V",
       cxxopts::value<std::string>()->default_value("per-image"))
      ("percentile", "clip = this percentile of |map|", cxxopts::value<double>()->default_value("99"))
      ("upsample", "cells (each patch's value over the stride x stride pixels around its centre) or smooth",
       cxxopts::value<std::string>()->default_value("cells"))
      ("cells", "same as --upsample cells")
      ("smooth", "same as --upsample smooth")
      ("frame", "input (the model input's pixels) or original (the original image, the crop outlined)",
       cxxopts::value<std::string>()->default_value("input"))
      ("alpha", "overlay: opacity of the map over the photo", cxxopts::value<double>()->default_value("0.6"));
  options.add_options("Output")
      ("o,output", "output directory (created; also --out)", cxxopts::value<std::string>())
      ("npy", "also save the raw maps of each picture as .npy [tiles, H', W'] float32")
      ("overwrite", "replace existing output files (default: refuse)")
      ("json", "print a JSON record of every picture (classes, logits, clip) instead of the summary")
      ("inputs", "images or directories", cxxopts::value<std::vector<std::string>>());
  add_help_flag(options);
  options.parse_positional({"inputs"});
}

// Checks every flag before anything is loaded, so that a typo costs no model load.
HeatmapFlags read_heatmap_flags(const cxxopts::ParseResult& parsed) {
  HeatmapFlags flags;
  if (!parsed.count("inputs")) throw UsageError("no input images or directories given");
  if (!parsed.count("output")) throw UsageError("-o OUTDIR is required");
  flags.inputs = parsed["inputs"].as<std::vector<std::string>>();
  flags.out_dir = parsed["output"].as<std::string>();
  flags.model = read_model_flags(parsed);
  flags.model.precision = read_precision_flag(parsed);
  flags.image = read_image_flags(parsed);
  RenderOptions& render = flags.render;
  const std::string style = parsed["style"].as<std::string>();
  if (style == "paper") render.style = Style::Paper;
  else if (style == "overlay") render.style = Style::Overlay;
  else if (style == "panel") render.style = Style::Panel;
  else throw UsageError("--style must be paper, overlay or panel, got '" + style + "'");
  render.colormap = find_colormap(parsed["cmap"].as<std::string>()).name;
  flags.scale_text = parsed["scale"].as<std::string>();
  flags.scale = parse_scale(flags.scale_text);
  render.percentile = parsed["percentile"].as<double>();
  if (!(render.percentile > 0 && render.percentile <= 100)) throw UsageError("--percentile must be in (0, 100]");
  std::string upsample = parsed["upsample"].as<std::string>();
  if (parsed.count("cells") && parsed.count("smooth")) throw UsageError("--cells and --smooth exclude each other");
  if (parsed.count("cells")) upsample = "cells";
  if (parsed.count("smooth")) upsample = "smooth";
  if (upsample == "cells") render.upsample = Upsample::Cells;
  else if (upsample == "smooth") render.upsample = Upsample::Smooth;
  else throw UsageError("--upsample must be cells or smooth, got '" + upsample + "'");
  const std::string frame = parsed["frame"].as<std::string>();
  if (frame == "input") render.frame = Frame::Input;
  else if (frame == "original") render.frame = Frame::Original;
  else throw UsageError("--frame must be input or original, got '" + frame + "'");
  render.overlay_alpha = parsed["alpha"].as<double>();
  if (!(render.overlay_alpha >= 0 && render.overlay_alpha <= 1)) throw UsageError("--alpha must be in [0, 1]");
  const std::string pct = fixed(render.percentile, render.percentile == std::floor(render.percentile) ? 0 : 1);
  render.clip_note = flags.scale.mode == ScaleMode::Fixed    ? "fixed"
                     : flags.scale.mode == ScaleMode::Global ? "global p" + pct + " |map|"
                                                             : "p" + pct + " |map|";
  if (flags.scale.mode == ScaleMode::Fixed) render.clip = flags.scale.fixed;
  flags.save_maps = parsed.count("npy") > 0;
  flags.overwrite = parsed.count("overwrite") > 0;
  flags.json = parsed.count("json") > 0;
  flags.class_text = parsed["class"].as<std::string>();
  if (parsed.count("vs")) flags.vs_text = parsed["vs"].as<std::string>();
  flags.stride_text = parsed["stride"].as<std::string>();
  flags.max_memory_mb = parsed["max-memory"].as<int>();
  flags.batching = read_batch_flags(parsed);
  return flags;
}

// ---- plan -----------------------------------------------------------------------------------

// What the flags mean for this model, and the pictures each image gets.
struct HeatmapPlan {
  std::vector<std::string> names;   // class names
  ClassChoice choice;
  int64_t vs = -1;                  // --vs class, -1 without
  InputSpec preprocess;
  int64_t stride = 0;
  bool native_stride = true;        // the model's own map (else a dense one)
  std::vector<Output> outputs;      // the same for every image
};

fs::path png_path(const fs::path& out_dir, const ImageFile& file, const Output& output) {
  return out_dir / (file.name + "." + output.suffix + ".png");
}

// --vs CLASS; -1 without it.
int64_t read_vs_class(const HeatmapFlags& flags, const std::vector<std::string>& names, const ClassChoice& choice) {
  if (!flags.vs_text) return -1;
  const auto list = parse_class_list(*flags.vs_text, names);
  if (list.size() != 1) throw UsageError("--vs takes one class");
  const int64_t vs = list[0];
  // A class minus itself is zero everywhere: a blank map that looks like "no difference found".
  if (std::find(choice.fixed.begin(), choice.fixed.end(), vs) != choice.fixed.end())
    throw UsageError("--vs " + std::to_string(vs) + " (" + names[vs] +
                     ") is also in --class: its difference with itself is zero everywhere; choose another class");
  return vs;
}

// The pictures of each image. Output files are known before any map is computed (top classes are
// named top1, top2, ...). The style is part of the name (the default, paper, adds nothing, so its
// names stay as they were), so that pictures of one image in several styles can share a folder.
std::vector<Output> plan_outputs(const HeatmapPlan& plan, Style style) {
  const ClassChoice& choice = plan.choice;
  const size_t slots = choice.top > 0 ? size_t(choice.top) : choice.fixed.size();
  std::vector<Output> outputs;
  const std::string vs_suffix = plan.vs >= 0 ? "-vs-" + std::to_string(plan.vs) + "-" + slug(plan.names[plan.vs]) : "";
  if (style == Style::Panel) {
    Output o{"panel" + vs_suffix, {}};
    for (size_t s = 0; s < slots; ++s) o.slots.push_back(s);
    outputs.push_back(o);
  } else {
    const std::string style_suffix = style == Style::Overlay ? ".overlay" : "";
    for (size_t s = 0; s < slots; ++s) {
      const std::string base = choice.top > 0 ? "top" + std::to_string(s + 1)
                                              : std::to_string(choice.fixed[s]) + "-" + slug(plan.names[choice.fixed[s]]);
      outputs.push_back({base + vs_suffix + style_suffix, {s}});
    }
  }
  return outputs;
}

// Existing files are refused before any work is done, unless --overwrite.
void refuse_existing_outputs(const HeatmapFlags& flags, const HeatmapPlan& plan, const ImageFiles& files) {
  if (flags.overwrite) return;
  size_t existing = 0;
  std::string first;
  for (const auto& f : files.images)
    for (const auto& o : plan.outputs) {
      const fs::path p = png_path(flags.out_dir, f, o);
      std::error_code ec;
      for (const fs::path& q : {p, fs::path(p).replace_extension(".npy")})
        if ((q == p || flags.save_maps) && fs::exists(q, ec)) {
          if (existing++ == 0) first = q.string();
        }
    }
  if (existing > 0)
    throw UsageError(std::to_string(existing) + " output file(s) exist already (first: " + first +
                     "); use --overwrite to replace them");
}

HeatmapPlan plan_heatmap(const HeatmapFlags& flags, const LoadedModel& model, const ImageFiles& files) {
  HeatmapPlan plan;
  plan.names = model_class_names(model, flags.model.labels);
  plan.choice = parse_class_choice(flags.class_text, plan.names);
  plan.vs = read_vs_class(flags, plan.names, plan.choice);
  plan.preprocess = make_input_spec(flags.image, model);
  plan.stride = resolve_map_stride(model.arch, flags.stride_text);
  plan.native_stride = plan.stride == total_stride(model.arch);
  plan.outputs = plan_outputs(plan, flags.render.style);
  refuse_existing_outputs(flags, plan, files);
  return plan;
}

// ---- run: one image -------------------------------------------------------------------------

// The classes of the batch's native pass: every class when the top ones are wanted (empty), else
// the chosen ones and the --vs class last.
std::vector<int64_t> native_classes(const HeatmapPlan& plan) {
  if (plan.choice.top > 0) return {};
  std::vector<int64_t> classes = plan.choice.fixed;
  if (plan.vs >= 0) classes.push_back(plan.vs);
  return classes;
}

// The maps of image `i` of a batch: its chosen classes (and the --vs class last) at the planned
// stride, from the batch's native map `map` (of native_classes); a dense map is computed for this
// image alone. File and photo are the caller's to fill in.
Job image_job(const EvidenceMap& map, const torch::Tensor& image_logits, const torch::Tensor& batch, int64_t i,
              const HeatmapFlags& flags, const HeatmapPlan& plan, LoadedModel& model) {
  const ClassChoice& choice = plan.choice;
  const int64_t vs = plan.vs;
  Job job;
  const torch::Tensor logits = image_logits[i];
  std::vector<int64_t> rows;  // rows of `map` holding the chosen classes (and vs last)
  if (choice.top > 0) {
    const torch::Tensor top = std::get<1>(logits.topk(choice.top));
    for (int64_t k = 0; k < choice.top; ++k) rows.push_back(top[k].item<int64_t>());
    job.classes = rows;
    if (vs >= 0) rows.push_back(vs);
  } else {
    job.classes = choice.fixed;
    rows.resize(native_classes(plan).size());
    std::iota(rows.begin(), rows.end(), int64_t(0));
  }
  for (size_t k = 0; k < job.classes.size(); ++k) job.logits.push_back(logits[rows[k]].item<float>());
  if (vs >= 0) job.vs_logit = logits[rows.back()].item<float>();
  torch::Tensor all;
  if (plan.native_stride) {
    all = map.logits[i].index_select(0, torch::tensor(rows));
    job.layout = layout_of(map.geometry);
  } else {
    DenseOptions dense;
    dense.stride = plan.stride;
    dense.max_memory_mb = flags.max_memory_mb;
    dense.classes = job.classes;
    if (vs >= 0) dense.classes.push_back(vs);
    const DenseMap d = compute_dense_evidence(model.net, batch.slice(0, i, i + 1), dense);
    all = d.logits[0];
    job.layout = layout_of(d);
  }
  const int64_t n = static_cast<int64_t>(job.classes.size());
  job.maps = all.slice(0, 0, n).contiguous();
  if (vs >= 0) {
    job.vs = vs;
    job.vs_map = all[n].contiguous();
  }
  return job;
}

// The maps of a batch [B, C, H, W] float32: one native pass for the batch (native_classes), then
// each image's maps (image_job).
std::vector<Job> compute_jobs(const torch::Tensor& batch, const HeatmapFlags& flags, const HeatmapPlan& plan,
                              LoadedModel& model) {
  EvidenceOptions native;
  native.classes = native_classes(plan);
  const EvidenceMap map = compute_evidence(model.net, batch, native);
  const torch::Tensor image_logits = map.image_logits();
  std::vector<Job> jobs;
  for (int64_t i = 0; i < batch.size(0); ++i) jobs.push_back(image_job(map, image_logits, batch, i, flags, plan, model));
  return jobs;
}

// Dense maps are computed on the zero-padded input, so their mean is not the image logit (the
// mean of the native map): the title names both so that neither is taken for the other.
std::string map_mean_note(const HeatmapPlan& plan, const torch::Tensor& map) {
  return plan.native_stride ? std::string() : "\nzero-padded map mean " + fixed(map.mean().item<double>(), 3);
}

// A subtracted negative logit in brackets, so that "- -0.2" cannot be misread.
std::string signed_term(float v) { return v < 0 ? "(" + fixed(v, 3) + ")" : fixed(v, 3); }

std::string class_title(const HeatmapPlan& plan, int64_t c, float logit, const torch::Tensor& map) {
  return std::to_string(c) + " " + plan.names[c] + "\nimage logit " + fixed(logit, 3) + map_mean_note(plan, map);
}

// The tile of class slot `s` minus the --vs class; warns when they are the same class.
MapTile difference_tile(const Job& job, size_t s, const HeatmapPlan& plan, ProgressBar& bar) {
  const int64_t vs = plan.vs;
  const auto& names = plan.names;
  if (job.classes[s] == vs) {
    bar.interrupt();
    std::cerr << "warning: " << job.file.path.string() << ": top class " << vs << " " << names[vs]
              << " is the --vs class; its difference map is zero everywhere\n";
  }
  const torch::Tensor difference = job.maps[int64_t(s)] - job.vs_map;
  return {difference, std::to_string(job.classes[s]) + " " + names[job.classes[s]] + "\nminus " +
                          std::to_string(vs) + " " + names[vs] + "\nimage logits " + fixed(job.logits[s], 3) +
                          "\n- " + signed_term(job.vs_logit) + " = " + fixed(job.logits[s] - job.vs_logit, 3) +
                          map_mean_note(plan, difference)};
}

// The tiles of one picture: the class maps; with --vs their differences (a panel also shows the
// maps they are the difference of).
std::vector<MapTile> output_tiles(const Job& job, const Output& o, Style style, const HeatmapPlan& plan,
                                  ProgressBar& bar) {
  std::vector<MapTile> tiles;
  const bool class_maps = plan.vs < 0 || style == Style::Panel;
  if (class_maps)
    for (size_t s : o.slots)
      tiles.push_back({job.maps[int64_t(s)], class_title(plan, job.classes[s], job.logits[s], job.maps[int64_t(s)])});
  if (plan.vs < 0) return tiles;
  if (style == Style::Panel) tiles.push_back({job.vs_map, class_title(plan, plan.vs, job.vs_logit, job.vs_map)});
  for (size_t s : o.slots) tiles.push_back(difference_tile(job, s, plan, bar));
  return tiles;
}

// Renders and saves the pictures of one image (clip: the global one, if any), appending a record of
// each to `written` as soon as it is saved, so that the pictures written before one that fails are
// still counted and listed.
void draw_job(const Job& job, const std::optional<double>& clip, const HeatmapFlags& flags, const HeatmapPlan& plan,
              ProgressBar& bar, std::vector<Written>& written) {
  RenderOptions opt = flags.render;
  if (clip) opt.clip = clip;
  for (const auto& o : plan.outputs) {
    const std::vector<MapTile> tiles = output_tiles(job, o, opt.style, plan, bar);
    const Figure fig = render_figure(job.input.original, job.input.transform, tiles, job.layout, opt);
    const fs::path png = png_path(flags.out_dir, job.file, o);
    fs::create_directories(png.parent_path());
    save_image(png.string(), fig.bgr());
    if (flags.save_maps) {
      std::vector<torch::Tensor> stack;
      for (const auto& t : tiles) stack.push_back(t.map);
      save_npy(fs::path(png).replace_extension(".npy").string(), torch::stack(stack));
    }
    Written w{job.file.path.string(), png.string(), {}, {}, fig.scale.clip, {}};
    for (const auto& t : tiles) w.titles.push_back(t.title);
    w.vs_logit = job.vs_logit;
    for (size_t s : o.slots) {
      w.classes.push_back(job.classes[s]);
      w.logits.push_back(job.logits[s]);
    }
    written.push_back(w);
  }
}

// ---- run: all images ------------------------------------------------------------------------

struct HeatmapResult {
  std::vector<Written> written;   // every picture, in order
  size_t images_ok = 0;
};

// Every image's maps, computed in batched passes (run_in_batches: decoded ahead, a batch's pass
// beside the previous batch's drawing), handed to `use` in input order inside the sample loop with
// its file and photo; returns how many images `use` took without failing.
size_t for_each_job(const ImageFiles& files, const HeatmapFlags& flags, const HeatmapPlan& plan, LoadedModel& model,
                    SampleLoop& loop, const std::function<void(Job&)>& use) {
  std::vector<std::string> paths;
  for (const ImageFile& f : files.images) paths.push_back(f.path.string());
  const Samples samples(paths, InputKinds::ImagesOnly);
  std::vector<int64_t> all(paths.size());
  std::iota(all.begin(), all.end(), 0);
  size_t ok = 0;
  const auto pass = [&](const torch::Tensor& batch) { return compute_jobs(batch, flags, plan, model); };
  const auto each = [&](DecodedSample& sample, Job* job) {
    const ImageFile& file = files.images[static_cast<size_t>(sample.info.index)];
    const bool done = loop.run(file.path.string(), [&] {
      if (sample.error) std::rethrow_exception(sample.error);
      job->file = file;
      job->input = std::move(*sample.input);
      use(*job);
    });
    if (done) ++ok;
  };
  run_in_batches<Job>(samples, all, plan.preprocess, flags.batching, model.net->parameters().front().device(),
                      {pass, /*prepare=*/{}, each});
  return ok;
}

// --scale per-image or fixed: each image drawn as soon as its maps are there.
HeatmapResult draw_each_image(const ImageFiles& files, const HeatmapFlags& flags, const HeatmapPlan& plan,
                              LoadedModel& model, SampleLoop& loop) {
  HeatmapResult result;
  result.images_ok = for_each_job(files, flags, plan, model, loop, [&](Job& job) {
    draw_job(job, std::nullopt, flags, plan, loop.bar(), result.written);
  });
  return result;
}

// The clip of --scale global: the percentile of |map| over every map that will be drawn.
double global_clip(const std::vector<Job>& jobs, const HeatmapFlags& flags, const HeatmapPlan& plan) {
  const Style style = flags.render.style;
  std::vector<torch::Tensor> maps;
  for (const auto& job : jobs) {
    if (plan.vs < 0 || style == Style::Panel) maps.push_back(job.maps);
    if (plan.vs >= 0) {
      if (style == Style::Panel) maps.push_back(job.vs_map);
      maps.push_back(job.maps - job.vs_map.unsqueeze(0));
    }
  }
  return abs_percentile(maps, flags.render.percentile);
}

// --scale global: a global clip needs every map first, so all maps are computed (first pass),
// then every image is drawn (second pass). Only the maps wait in memory; photos are read again.
HeatmapResult draw_on_global_scale(const ImageFiles& files, const HeatmapFlags& flags, const HeatmapPlan& plan,
                                   LoadedModel& model, SampleLoop& loop) {
  std::vector<Job> jobs;
  for_each_job(files, flags, plan, model, loop, [&](Job& job) {
    job.input.original = cv::Mat();  // only the maps and the transform wait in memory
    job.input.tensor = torch::Tensor();
    jobs.push_back(std::move(job));
  });
  const double clip = global_clip(jobs, flags, plan);
  HeatmapResult result;
  ProgressBar second("render");
  for (size_t i = 0; i < jobs.size(); ++i) {
    Job& job = jobs[i];
    const bool ok = loop.run_again(job.file.path.string(), [&] {
      job.input.original = load_image(job.file.path.string(), plan.preprocess).original;
      draw_job(job, clip, flags, plan, loop.bar(), result.written);
      job.input.original = cv::Mat();
    });
    if (ok) ++result.images_ok;
    second.update({int64_t(i + 1), int64_t(jobs.size()), "pictures"});
  }
  return result;
}

// ---- summary --------------------------------------------------------------------------------

void print_json_summary(const HeatmapResult& result, const HeatmapFlags& flags, const HeatmapPlan& plan,
                        const ImageFiles& files, const SampleLoop& loop) {
  const int64_t vs = plan.vs;
  const auto& names = plan.names;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& w : result.written) {
    nlohmann::json classes = nlohmann::json::array();
    for (size_t k = 0; k < w.classes.size(); ++k)
      classes.push_back({{"class", w.classes[k]}, {"name", names[w.classes[k]]}, {"logit", w.logits[k]}});
    nlohmann::json record = {
        {"image", json_path(w.image)}, {"png", json_path(w.png)}, {"classes", classes}, {"clip", w.clip}, {"titles", w.titles}};
    if (vs >= 0) record["vs"] = {{"class", vs}, {"name", names[vs]}, {"logit", w.vs_logit}};
    list.push_back(record);
  }
  const nlohmann::json summary = {{"pictures", list},
                                  {"failed", loop.failed()},
                                  {"skipped", files.skipped.size()},
                                  {"scale", flags.scale_text},
                                  {"percentile", flags.render.percentile},
                                  {"stride", plan.stride}};
  std::cout << to_json_text(summary, 2) << "\n";
}

void print_text_summary(const HeatmapResult& result, const HeatmapFlags& flags, const ImageFiles& files,
                        const SampleLoop& loop) {
  const std::vector<Written>& written = result.written;
  std::string clips = "none";
  if (!written.empty()) {
    double lo = written[0].clip, hi = lo;
    for (const auto& w : written) lo = std::min(lo, w.clip), hi = std::max(hi, w.clip);
    clips = lo == hi ? format_tick(lo) : format_tick(lo) + " to " + format_tick(hi);
  }
  std::cout << written.size() << " picture(s) of " << result.images_ok << " image(s) written to "
            << flags.out_dir.string() << ", " << loop.failed() << " failed, " << files.skipped.size()
            << " skipped; clip " << clips << " (" << flags.render.clip_note << ")\n";
}

// A JSON record of every picture with --json, else one line.
void print_heatmap_summary(const HeatmapResult& result, const HeatmapFlags& flags, const HeatmapPlan& plan,
                           const ImageFiles& files, const SampleLoop& loop) {
  if (flags.json)
    print_json_summary(result, flags, plan, files, loop);
  else
    print_text_summary(result, flags, files, loop);
}

}  // namespace

int run_heatmap(int argc, char** argv) {
  cxxopts::Options options(
      "bagnet heatmap",
      "Draw BagNet evidence maps as PNG pictures: one per image and class (or one panel per image). "
      "Red = evidence for the class, blue = against (RdBu_r), limits +-(99th percentile of |map|), Canny "
      "edges of the photo in grey, as in the BagNet paper. Directories are walked recursively.");
  add_heatmap_flags(options);
  cxxopts::ParseResult parsed;
  if (!parse_or_help(options, argc, argv, kHeatmapExamples, parsed, {{"out", "output"}})) return kExitOk;
  const HeatmapFlags flags = read_heatmap_flags(parsed);
  const ImageFiles files = collect_image_files(flags.inputs, flags.out_dir);

  LoadedModel model = open_model(flags.model);
  const HeatmapPlan plan = plan_heatmap(flags, model, files);

  if (files.images.empty() && files.missing.empty())
    fail(ErrorKind::BadInput, "no image files found in the inputs given (", files.skipped.size(),
         " other file(s) skipped)");
  for (const auto& s : files.skipped) std::cerr << "warning: skipped " << s << ": not an image file extension\n";
  const bool global = flags.scale.mode == ScaleMode::Global;
  SampleLoop loop(global ? "maps" : "heatmap", int64_t(files.images.size() + files.missing.size()));
  for (const auto& m : files.missing) loop.fail(m, "no such file or directory", kExitBadInput);
  const HeatmapResult result = global ? draw_on_global_scale(files, flags, plan, model, loop)
                                      : draw_each_image(files, flags, plan, model, loop);
  loop.bar().interrupt();
  print_heatmap_summary(result, flags, plan, files, loop);
  return loop.finish();
}

}  // namespace bagnet::cli
