// write_diff_page (diff_view.h): one static page over diff.json and changes.jsonl. The changes are
// streamed once per kind, so memory does not grow with the number of changed decisions.
#include "site_parts.h"

#include <bagnet/atomic_file.h>
#include <bagnet/diff_view.h>
#include <bagnet/error.h>
#include <bagnet/json_text.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace bagnet {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using detail::html_escape;

std::string number(const json& v, const char* format = "%.4g") {
  if (!v.is_number()) return "–";
  char text[48];
  std::snprintf(text, sizeof text, format, v.get<double>());
  return text;
}

std::string percent(const json& v) { return v.is_number() ? number(json(100 * v.get<double>()), "%.2f") + " %" : "–"; }

std::string text(const json& v) { return v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump(); }

// The evidence browser's style sheet (assets/site/style.css) comes first; these rules add what
// only this page has.
constexpr const char* kDiffStyle = R"(
.mono { overflow-wrap: anywhere; }
table { background: var(--card); }
th { color: var(--muted); font-weight: 600; }
td { vertical-align: top; }
.up { color: var(--ok); } .down { color: var(--err); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 12px; }
.change img { max-width: 100%; height: auto; image-rendering: pixelated; display: block; margin-bottom: 6px; }
.change dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 10px; margin: 0; }
.change dt { color: var(--muted); }
.change dd { margin: 0; }
)";

void summary_section(std::ostream& out, const json& d) {
  out << "<section id=\"summary\"><h2>Summary</h2><div class=\"card\"><table>"
      << "<tr><th>model</th><th>file</th><th class=\"num\">q</th><th class=\"num\">accuracy</th></tr>";
  for (const char* role : {"against", "weights"}) {
    const json& m = d.at(role);
    out << "<tr><td>--" << role << (std::string(role) == "against" ? " (before)" : " (after)") << "</td><td class=\"mono\">"
        << html_escape(path_from_json(text(m.at("file")))) << "</td><td class=\"num\">" << text(m.at("receptive_field"))
        << "</td><td class=\"num\">" << percent(d.at("accuracy").at(role)) << "</td></tr>";
  }
  const json& c = d.at("decisions");
  out << "</table><p>" << text(d.at("images")) << " images (" << text(d.at("labelled")) << " labelled): accuracy change <b>"
      << percent(d.at("accuracy").at("change")) << "</b>; decisions the same " << text(c.at("same")) << ", <a href=\"#fixed\">fixed "
      << text(c.at("fixed")) << "</a>, <a href=\"#introduced\">introduced " << text(c.at("introduced"))
      << "</a>, <a href=\"#other_mistake\">another mistake " << text(c.at("other_mistake")) << "</a>, <a href=\"#changed\">changed "
      << "(unlabelled) " << text(c.at("changed_unlabelled")) << "</a>.</p><p>McNemar's exact test (fixed against introduced, "
      << text(d.at("mcnemar").at("discordant")) << " discordant images): p = " << number(d.at("mcnemar").at("p_value"), "%.3g")
      << ". Evidence compared on dense maps at stride " << text(d.at("settings").at("map_stride"))
      << " (cell (i, j): the patch centred on input pixel (stride·i, stride·j)).</p></div></section>\n";
}

void class_section(std::ostream& out, const json& d) {
  out << "<section id=\"classes\"><h2>Per class</h2><table><tr><th>class</th><th class=\"num\">images</th>"
      << "<th class=\"num\">--against</th><th class=\"num\">--weights</th><th class=\"num\">change</th>"
      << "<th class=\"num\">fixed</th><th class=\"num\">introduced</th></tr>";
  for (const json& c : d.at("per_class")) {
    const double change = c.at("change").get<double>();
    out << "<tr><td>" << html_escape(text(c.at("name"))) << "</td><td class=\"num\">" << text(c.at("samples"))
        << "</td><td class=\"num\">" << percent(c.at("against_accuracy")) << "</td><td class=\"num\">"
        << percent(c.at("weights_accuracy")) << "</td><td class=\"num " << (change > 0 ? "up" : change < 0 ? "down" : "")
        << "\">" << (change > 0 ? "+" : "") << percent(c.at("change")) << "</td><td class=\"num\">" << text(c.at("fixed"))
        << "</td><td class=\"num\">" << text(c.at("introduced")) << "</td></tr>";
  }
  out << "</table></section>\n<section id=\"moves\"><h2>Changed decisions by class pair</h2><table><tr><th>--against said</th>"
      << "<th>--weights says</th><th class=\"num\">images</th></tr>";
  size_t shown = 0;
  for (const json& m : d.at("moves")) {
    if (++shown > 30) break;
    out << "<tr><td>" << html_escape(text(m.at("from_name"))) << "</td><td>" << html_escape(text(m.at("to_name")))
        << "</td><td class=\"num\">" << text(m.at("count")) << "</td></tr>";
  }
  out << "</table>" << (d.at("moves").size() > 30 ? "<p class=\"muted\">The 30 most frequent pairs.</p>" : "") << "</section>\n";
}

std::string cells_text(const json& cells) {
  std::string out;
  for (const json& c : cells) {
    const json& b = c.at("box_original");
    out += (out.empty() ? "" : "; ") + number(c.at("difference"), "%+.3g") + " at rows " + number(b.at(0), "%.0f") + "–" +
           number(b.at(2), "%.0f") + ", cols " + number(b.at(1), "%.0f") + "–" + number(b.at(3), "%.0f");
  }
  return out.empty() ? "–" : out;
}

void change_card(std::ostream& out, const json& c) {
  const json& before = c.at("against");
  const json& after = c.at("weights");
  out << "<div class=\"card change\" id=\"s" << text(c.at("index")) << "\">";
  if (c.at("figure").is_string()) {
    const std::string f = html_escape(c.at("figure").get<std::string>());
    out << "<a href=\"" << f << "\"><img loading=\"lazy\" src=\"" << f << "\" alt=\"margin maps of sample " << text(c.at("index"))
        << "\"></a>";
  }
  out << "<dl><dt>sample</dt><dd>#" << text(c.at("index")) << " <span class=\"mono small\">"
      << html_escape(path_from_json(text(c.at("source")))) << "</span></dd>";
  if (!c.at("label").is_null()) out << "<dt>true class</dt><dd>" << html_escape(text(c.value("label_name", json()))) << "</dd>";
  out << "<dt>--against</dt><dd>" << html_escape(text(before.at("name"))) << " (p " << number(before.at("probability"), "%.2f")
      << ")</dd><dt>--weights</dt><dd>" << html_escape(text(after.at("name"))) << " (p " << number(after.at("probability"), "%.2f")
      << ")</dd><dt>logit margin</dt><dd>" << html_escape(text(after.at("name"))) << " − " << html_escape(text(before.at("name")))
      << ": " << number(before.at("margin"), "%+.3f") << " → " << number(after.at("margin"), "%+.3f")
      << "</dd><dt>toward --weights</dt><dd>" << cells_text(c.at("evidence").at("toward_weights"))
      << "</dd><dt>toward --against</dt><dd>" << cells_text(c.at("evidence").at("toward_against")) << "</dd></dl></div>\n";
}

// One section per kind of change, reading changes.jsonl once for it.
void change_section(std::ostream& out, const std::string& lines_path, const std::string& kind, const std::string& title,
                    int64_t count) {
  out << "<section id=\"" << kind << "\"><h2>" << title << " (" << count << ")</h2>";
  if (count == 0) {
    out << "<p class=\"muted\">None.</p></section>\n";
    return;
  }
  std::ifstream in(lines_path, std::ios::binary);
  BAGNET_CHECK(in.good(), ErrorKind::BadInput, lines_path, ": cannot read");
  out << "<div class=\"grid\">";
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    json c;
    try {
      c = json::parse(line);
      if (c.at("change").get<std::string>() == kind) change_card(out, c);
    } catch (const json::exception& e) {
      throw Error(ErrorKind::BadInput, lines_path + ":" + std::to_string(number) + ": not a change record (" + e.what() + ")");
    }
  }
  out << "</div></section>\n";
}

}  // namespace

void write_diff_page(const std::string& dir, const nlohmann::json& diff) {
  const std::string lines = (fs::path(dir) / "changes.jsonl").string();
  const auto file_name = [](const json& model) { return fs::path(path_from_json(text(model.at("file")))).filename().string(); };
  const std::string title = "bagnet diff · " + file_name(diff.at("weights")) + " against " + file_name(diff.at("against"));
  const json& c = diff.at("decisions");
  write_file_atomically((fs::path(dir) / "index.html").string(), [&](std::ostream& out) {
    out << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
        << "content=\"width=device-width, initial-scale=1\"><title>" << html_escape(title) << "</title><style>" << assets::site_style_css << kDiffStyle
        << "</style></head><body>\n<header class=\"top\"><h1>" << html_escape(title) << "</h1><nav><a href=\"#summary\">summary</a>"
        << "<a href=\"#classes\">classes</a><a href=\"#fixed\">fixed</a><a href=\"#introduced\">introduced</a>"
        << "<a href=\"#other_mistake\">other mistakes</a><a href=\"#changed\">unlabelled</a></nav></header>\n<main>\n";
    summary_section(out, diff);
    class_section(out, diff);
    out << "<p class=\"muted\">Each figure: the image; both models' margin maps of the new class over the old one (logits, "
        << "one colour scale); their difference (red: evidence moved toward --weights' class). Solid boxes: strongest cells "
        << "toward --weights' class, dashed: toward --against's.</p>\n";
    change_section(out, lines, "fixed", "Mistakes fixed", c.at("fixed").get<int64_t>());
    change_section(out, lines, "introduced", "Mistakes introduced", c.at("introduced").get<int64_t>());
    change_section(out, lines, "other_mistake", "Wrong both times, another class", c.at("other_mistake").get<int64_t>());
    change_section(out, lines, "changed", "Changed (unlabelled)", c.at("changed_unlabelled").get<int64_t>());
    out << "</main></body></html>\n";
  });
}

}  // namespace bagnet
