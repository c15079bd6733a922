// Evidence reports: the minimal flip set against brute force, reports of a small random-weight
// BagNet validated against docs/report-schema.json (and the validator against broken documents),
// total evidence equal to the logit, occlusion, summaries, and the reports.jsonl file handling.
#include <bagnet/arch.h>
#include <bagnet/error.h>
#include <bagnet/model.h>
#include <bagnet/report.h>

#include "float_error.h"
#include "json_schema.h"

#include "scratch.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <random>

using namespace bagnet;
using bagnet::test::SchemaValidator;
using namespace bagnet::test;
namespace fs = std::filesystem;

namespace {

nlohmann::json load_schema() {
  std::ifstream in(std::string(BAGNET_SOURCE_DIR) + "/docs/report-schema.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

MapGeometry geometry(int64_t rows, int64_t cols) {
  MapGeometry g;
  g.rows = rows;
  g.cols = cols;
  g.stride = 8;
  g.patch = 9;
  g.input_height = (rows - 1) * 8 + 9;
  g.input_width = (cols - 1) * 8 + 9;
  return g;
}

// Brute force: the smallest subset (leaving at least one patch) after whose removal class t's mean
// is strictly above class p's.
int64_t brute_force_flip(const torch::Tensor& maps, int64_t p, int64_t t) {
  const auto flat = maps.to(torch::kDouble).reshape({maps.size(0), -1});
  const int64_t n = flat.size(1);
  int64_t best = -1;
  for (uint32_t mask = 0; mask < (1u << n) - 1; ++mask) {
    const int64_t s = __builtin_popcount(mask);
    if (best >= 0 && s >= best) continue;
    double sp = 0, st = 0;
    for (int64_t i = 0; i < n; ++i)
      if (!(mask & (1u << i))) {
        sp += flat[p][i].item<double>();
        st += flat[t][i].item<double>();
      }
    if (st > sp) best = s;
  }
  return best;
}

struct TinyNet {
  BagNet net{nullptr};
  ReportContext context;
};

TinyNet tiny_net(int64_t classes) {
  torch::manual_seed(3);
  TinyNet t;
  const Arch arch = parse_arch("blocks=1-1-1-1,kernel3=1-1-0-0,widths=4-4-4-4,stem=4,strides=2-2-1-1,classes=" +
                               std::to_string(classes));
  t.net = BagNet(arch);
  t.net->eval();
  ModelFingerprint& m = t.context.model;
  m.path = "tiny.pt";
  m.sha256 = std::string(64, 'a');
  m.architecture = arch_to_spec(arch);
  m.arch_name = "custom";
  m.receptive_field = receptive_field(arch);
  m.stride = total_stride(arch);
  m.num_classes = classes;
  m.torch_version = "test";
  m.device = "cpu";
  m.preprocessing.resize = std::nullopt;
  m.preprocessing.crop = 32;
  m.preprocessing.mean = {0.5f, 0.5f, 0.5f};
  m.preprocessing.std = {0.25f, 0.25f, 0.25f};
  for (int64_t c = 0; c < classes; ++c) t.context.class_names.push_back("c" + std::to_string(c));
  ImageInfo& im = t.context.image;
  im.source = "x.png";
  im.transform = ImageTransform::identity(32, 32);
  return t;
}

std::string scratch(const std::string& name) { return (scratch_folder("report") / name).string(); }

}  // namespace

TEST_CASE("the minimal flip set flips at the bag level and no smaller set does (brute force)") {
  torch::manual_seed(11);
  int64_t flips = 0, impossible = 0;
  for (int trial = 0; trial < 300; ++trial) {
    CAPTURE(trial);
    const int64_t rows = 2 + trial % 2, cols = 3 + (trial / 2) % 2;  // 6 to 12 patches
    const MapGeometry g = geometry(rows, cols);
    // A mix of scales so that flip sizes from 0 to "impossible" all occur.
    torch::Tensor maps = torch::randn({4, rows, cols}, torch::kDouble);
    maps[0] += 0.3 * (trial % 5);
    const torch::Tensor means = maps.mean({1, 2});
    const int64_t p = means.argmax().item<int64_t>();
    const int64_t t = (p + 1 + trial % 3) % 4;
    const FlipSet flip = minimal_flip_set(maps[p], maps[t], maps, g);
    const int64_t expected = brute_force_flip(maps, p, t);
    CHECK(flip.possible == (expected >= 0));
    if (!flip.possible) {
      ++impossible;
      continue;
    }
    ++flips;
    CHECK(flip.size == expected);
    REQUIRE(static_cast<int64_t>(flip.patches.size()) == flip.size);
    // Removing exactly these patches flips the pair, and the reported numbers are the bag's.
    torch::Tensor keep = torch::ones({rows, cols}, torch::kBool);
    for (const auto& patch : flip.patches) {
      keep[patch.row][patch.col] = false;
      CHECK(patch.box == g.cell_box(patch.row, patch.col));
      CHECK(patch.value == doctest::Approx((maps[p][patch.row][patch.col] - maps[t][patch.row][patch.col]).item<double>()));
    }
    const torch::Tensor left = maps.index({torch::indexing::Slice(), keep});  // [4, n - s]
    const torch::Tensor new_means = left.mean(1);
    CHECK(new_means[t].item<double>() > new_means[p].item<double>());
    CHECK(flip.margin_after == doctest::Approx((new_means[p] - new_means[t]).item<double>()));
    CHECK(flip.top1_after == new_means.argmax().item<int64_t>());
  }
  CHECK(flips > 100);
  CHECK(impossible > 0);
}

TEST_CASE("flip set corner cases: ties do not flip, all-positive margins cannot flip") {
  const MapGeometry g = geometry(1, 3);
  // Equal means: the true class does not beat the predicted one until a patch is removed.
  torch::Tensor p = torch::tensor({{1.0, 0.0, 0.0}}), t = torch::tensor({{0.0, 0.0, 1.0}});
  FlipSet f = minimal_flip_set(p, t, torch::Tensor(), g);
  CHECK(f.possible);
  CHECK(f.size == 1);
  CHECK(f.patches[0].col == 0);
  CHECK(f.top1_after == -1);
  // Margin 0 left after removing the only positive-margin patch: a tie, so one more is needed, but
  // every other margin is 0 too: impossible.
  p = torch::tensor({{2.0, 1.0, 1.0}});
  t = torch::tensor({{1.0, 1.0, 1.0}});
  f = minimal_flip_set(p, t, torch::Tensor(), g);
  CHECK_FALSE(f.possible);
  // Already beaten (the caller's "predicted" is not the arg max): size 0.
  f = minimal_flip_set(t, p, torch::Tensor(), g);
  CHECK(f.possible);
  CHECK(f.size == 0);
}

TEST_CASE("the schema validator rejects broken documents") {
  const SchemaValidator v(nlohmann::json::parse(R"({
    "type": "object", "required": ["a", "b"], "additionalProperties": false,
    "properties": {
      "a": {"type": "integer", "minimum": 0, "maximum": 9},
      "b": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1},
      "c": {"type": ["string", "null"], "minLength": 2},
      "d": {"enum": ["x", 1]},
      "e": {"type": "number", "exclusiveMinimum": 0}
    },
    "$defs": {"item": {"type": "object", "required": ["k"], "properties": {"k": {"type": "boolean"}}}}
  })"));
  CHECK(v.validate(nlohmann::json::parse(R"({"a": 3, "b": [{"k": true}], "c": null, "d": 1, "e": 0.5})")).empty());
  const std::vector<std::string> broken{
      R"({"a": 3})",                                    // missing required
      R"({"a": "3", "b": [{"k": true}]})",              // wrong type
      R"({"a": 3.5, "b": [{"k": true}]})",              // not an integer
      R"({"a": -1, "b": [{"k": true}]})",               // below minimum
      R"({"a": 10, "b": [{"k": true}]})",               // above maximum
      R"({"a": 3, "b": []})",                           // minItems
      R"({"a": 3, "b": [{"k": 1}]})",                   // item type via $ref
      R"({"a": 3, "b": [{}]})",                         // item required via $ref
      R"({"a": 3, "b": [{"k": true}], "z": 1})",        // additional property
      R"({"a": 3, "b": [{"k": true}], "c": "x"})",      // minLength
      R"({"a": 3, "b": [{"k": true}], "d": "y"})",      // enum
      R"({"a": 3, "b": [{"k": true}], "e": 0})",        // exclusiveMinimum
      R"([1, 2])",                                      // not an object
  };
  for (const auto& text : broken) {
    CAPTURE(text);
    CHECK_FALSE(v.validate(nlohmann::json::parse(text)).empty());
  }
  CHECK_THROWS(SchemaValidator(nlohmann::json::parse(R"({"oneOf": []})")).validate(1));
}

TEST_CASE("reports of a random-weight BagNet validate against the schema; total evidence equals the logit") {
  const SchemaValidator schema(load_schema());
  TinyNet tiny = tiny_net(6);
  torch::manual_seed(5);
  int64_t errors = 0, correct = 0;
  for (int i = 0; i < 12; ++i) {
    CAPTURE(i);
    const torch::Tensor input = torch::randn({3, 32, 40});
    ReportContext context = tiny.context;
    context.image.index = i;
    if (i % 4 != 3) context.image.label = i % 6;
    context.image.transform = ImageTransform::identity(32, 40);  // the input, from a 2x larger original
    context.image.transform.original_height = 64;
    context.image.transform.original_width = 80;
    ReportOptions options;
    options.topk = 3;
    options.patches = 4;
    options.verify_occlusion = i % 2 ? 3 : 0;
    const Report report = build_report(tiny.net, input, context, options);
    const nlohmann::json json = report_to_json(report);
    const auto violations = schema.validate(json);
    for (const auto& e : violations) FAIL_CHECK(e);
    CHECK(nlohmann::json::parse(json.dump()) == json);

    // Total evidence (mean of the patch logits) against the model's own forward pass. The same
    // features [1, F, H', W'] meet the classifier per position (map) or after pooling (the
    // recorded logit), in float32: both are within gamma_n(F + 1) (|W| mean|f| + |b|) of exact, and
    // the float32 means over P positions add gamma_n(P) of the same magnitude (float_error.h).
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = tiny.net->forward(input.unsqueeze(0))[0].to(torch::kDouble);
    const torch::Tensor features = tiny.net->features(input.unsqueeze(0));
    const int64_t positions = features.size(2) * features.size(3);
    const torch::Tensor magnitude =
        (linear_difference_bound(features.abs().mean({2, 3}, true), tiny.net->named_parameters()["fc.weight"],
                                 tiny.net->named_parameters()["fc.bias"]) /
         (2 * gamma_n(features.size(1) + 1))).flatten();
    const double per_magnitude = 2 * gamma_n(features.size(1) + 1) + 2 * gamma_n(positions);
    for (const auto& c : report.classes) {
      const double bound = per_magnitude * magnitude[c.cls].item<double>() * kBoundSafety;
      CHECK(c.matches);
      CHECK(c.difference <= bound);
      CHECK(std::abs(c.total_evidence - logits[c.cls].item<double>()) <= bound);
      CHECK(c.positive_count + c.negative_count <= report.map_rows * report.map_cols);
      CHECK(c.total_evidence == doctest::Approx((c.positive_sum + c.negative_sum) / double(report.map_rows * report.map_cols)));
      for (size_t k = 1; k < c.top_positive.size(); ++k) CHECK(c.top_positive[k - 1].value >= c.top_positive[k].value);
      for (const auto& p : c.top_positive) {
        CHECK(p.value > 0);
        CHECK(p.original[0] == 2.0 * p.box.top);
      }
    }
    CHECK(report.predictions[0].cls == logits.argmax().item<int64_t>());
    CHECK(json["predictions"].size() == 3);
    if (report.decision) {
      const Decision& d = *report.decision;
      CHECK(json["classes"].size() == (d.true_rank <= 3 ? 3u : 4u));
      if (d.correct) {
        ++correct;
        CHECK_FALSE(json["decision"].contains("flip_set"));
      } else {
        ++errors;
        CHECK(d.margin > 0);
        CHECK(d.margin_map.mean == doctest::Approx(d.margin));
        double shares = 0;
        for (const auto& p : d.margin_patches) shares += p.share;
        CHECK(shares > 0);
        CHECK(json["decision"]["flip_set"]["exact_at"] == "bag");
        if (d.flip.possible) CHECK(d.flip.margin_after < 0);
      }
    } else {
      CHECK(json["decision"].is_null());
    }
    if (options.verify_occlusion > 0) {
      REQUIRE(!report.occlusion.empty());
      const OcclusionCheck& o = report.occlusion[0];
      CHECK(o.target == "predicted");
      CHECK(o.patches.size() == 3);
      // The real logit after masking, recomputed here from the masked input.
      torch::Tensor masked = input.clone().unsqueeze(0);
      const torch::Tensor colour = masked.mean({2, 3}, true);
      using torch::indexing::Slice;
      for (const auto& p : o.patches)
        masked.index_put_({Slice(), Slice(), Slice(p.box.top, p.box.bottom()), Slice(p.box.left, p.box.right())},
                          colour.expand({1, 3, p.box.height, p.box.width}));
      const torch::Tensor after = tiny.net->forward(masked)[0];
      CHECK(o.classes[0].cls == report.predictions[0].cls);
      // Two float32 evaluations of the masked image: within twice the network's rounding bound
      // (float_error.h).
      const double bound = 2 * image_logits_bounded(tiny.net, masked).error[0][o.classes[0].cls].item<double>();
      CHECK(std::abs(o.classes[0].after - after[o.classes[0].cls].item<double>()) <= bound);
      CHECK(report.occlusion.size() == (report.decision && !report.decision->correct ? 2u : 1u));
    }
  }
  CHECK(errors > 0);
  CHECK(correct + errors == 9);
}

TEST_CASE("summary: accuracy, confusions by frequency, errors by margin") {
  auto make = [](int64_t index, int64_t truth, int64_t predicted, double margin) {
    nlohmann::json d = {{"true_class", truth}, {"true_name", "n" + std::to_string(truth)}, {"predicted", predicted},
                        {"predicted_name", "n" + std::to_string(predicted)}, {"correct", truth == predicted},
                        {"true_rank", truth == predicted ? 1 : 2}};
    if (truth != predicted) {
      d["margin"] = margin;
      d["flip_set"] = {{"size", 1}};
    }
    return nlohmann::json{{"image", {{"index", index}, {"source", "s" + std::to_string(index)}}},
                          {"model", {{"sha256", "x"}}},
                          {"predictions", nlohmann::json::array({1, 2})},
                          {"classes", nlohmann::json::array({{{"evidence_check", {{"difference", 1e-7}, {"matches", true}}}}})},
                          {"decision", d}};
  };
  const std::vector<nlohmann::json> reports{make(0, 1, 1, 0), make(1, 1, 2, 0.5), make(2, 3, 2, 2.0),
                                            make(3, 1, 2, 1.0), make(4, 3, 3, 0)};
  const auto s = summarize_reports(reports, 6);
  CHECK(s["inputs"] == 6);
  CHECK(s["reported"] == 5);
  CHECK(s["accuracy"].get<double>() == doctest::Approx(0.4));
  CHECK(s["top_k_accuracy"].get<double>() == doctest::Approx(1.0));
  REQUIRE(s["confusions"].size() == 2);
  CHECK(s["confusions"][0]["true_class"] == 1);
  CHECK(s["confusions"][0]["predicted"] == 2);
  CHECK(s["confusions"][0]["count"] == 2);
  REQUIRE(s["errors"].size() == 3);
  CHECK(s["errors"][0]["index"] == 2);
  CHECK(s["errors"][1]["index"] == 3);
  CHECK(s["errors"][2]["index"] == 1);
  CHECK(s["per_class"][0]["class"] == 1);
  CHECK(s["per_class"][0]["accuracy"].get<double>() == doctest::Approx(1.0 / 3));
}

TEST_CASE("reports.jsonl: a torn last line is dropped and repaired, order is canonical, duplicates refused") {
  const std::string path = scratch("reports.jsonl");
  auto line = [](int64_t index) {
    return nlohmann::json{{"schema", kReportSchema}, {"version", kReportVersion}, {"image", {{"index", index}, {"source", "s"}}}}
        .dump();
  };
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << line(2) << '\n' << line(0) << '\n' << line(1).substr(0, 17);
  }
  CHECK(read_report_lines(path, false).size() == 2);
  CHECK(fs::file_size(path) > (line(2).size() + line(0).size() + 2));
  auto reports = read_report_lines(path, true);
  REQUIRE(reports.size() == 2);
  CHECK(fs::file_size(path) == line(2).size() + line(0).size() + 2);
  write_report_lines(path, reports);
  reports = read_report_lines(path, false);
  CHECK(reports[0]["image"]["index"] == 0);
  CHECK(reports[1]["image"]["index"] == 2);
  reports.push_back(reports[0]);
  CHECK_THROWS_AS(write_report_lines(path, reports), Error);
  CHECK(read_report_lines(path, false).size() == 2);  // the refused write left the file alone
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << line(0) << "\n{not json\n" << line(1) << '\n';
  }
  CHECK_THROWS_WITH_AS(read_report_lines(path, false), doctest::Contains(":2:"), Error);
  CHECK(read_report_lines(scratch("absent.jsonl"), true).empty());
  // Another schema version is refused, naming the line.
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << line(0) << '\n' << nlohmann::json{{"schema", kReportSchema}, {"version", 1}, {"image", {{"index", 1}}}}.dump() << '\n';
  }
  CHECK_THROWS_WITH_AS(read_report_lines(path, false), doctest::Contains(":2: report schema version 1"), Error);
}

TEST_CASE("reports.jsonl streamed: visited and rewritten in index order, one at a time; duplicates refused") {
  const std::string path = scratch("stream.jsonl");
  auto line = [](int64_t index) {
    return nlohmann::json{{"schema", kReportSchema}, {"version", kReportVersion}, {"image", {{"index", index}}}}.dump();
  };
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << line(5) << '\n' << line(1) << '\n' << line(3) << '\n' << line(4).substr(0, 20);  // torn last line
  }
  std::vector<int64_t> seen;
  sort_report_lines(path, [&](const nlohmann::json& r) { seen.push_back(r["image"]["index"].get<int64_t>()); });
  CHECK(seen == std::vector<int64_t>{1, 3, 5});
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == line(1) + "\n" + line(3) + "\n" + line(5) + "\n");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << line(2) << '\n' << line(2) << '\n';
  }
  CHECK_THROWS_WITH_AS(sort_report_lines(path), doctest::Contains("reported twice"), Error);
  CHECK(read_report_lines(path, false).size() == 2);  // left alone
}

TEST_CASE("reports.jsonl: a report document without its schema's fields is bad input at its line (fuzz finding)") {
  // Found by fuzz_report_lines: a line of the right schema and version whose decision lacked a field
  // made ReportSummary throw nlohmann's out_of_range out of the reader (tests/fuzz/corpus/report_lines/
  // regression-missing-field.jsonl).
  const std::string path = scratch("fields.jsonl");
  const nlohmann::json good = {{"schema", kReportSchema}, {"version", kReportVersion},
                               {"image", {{"index", 0}, {"source", "s"}}}, {"model", {{"sha256", "x"}}},
                               {"predictions", nlohmann::json::array()},
                               {"classes", nlohmann::json::array({{{"evidence_check", {{"matches", true}}}}})},
                               {"decision", nullptr}};
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << good.dump() << '\n';
  }
  ReportSummary summary;
  auto add = [&](const nlohmann::json& r) { summary.add(r); };
  CHECK_THROWS_WITH_AS(visit_report_lines(path, add), doctest::Contains("fields.jsonl:1: a report without the fields"), Error);
  CHECK_THROWS_WITH_AS(scan_report_lines(path, false, add), doctest::Contains("difference"), Error);
  CHECK_THROWS_WITH_AS(sort_report_lines(path, add), doctest::Contains(":1:"), Error);
}
