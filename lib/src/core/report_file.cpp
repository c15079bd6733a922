// reports.jsonl: one report per line, appended and flushed line by line while a run goes, so a
// killed run leaves only complete lines plus at most one torn last line, which is dropped here.
#include <bagnet/json_text.h>
#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/report.h>

#include "report_lines.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace bagnet {

namespace detail {

namespace {

// One line of reports.jsonl: a report of this schema and version, with an image index.
nlohmann::json parse_report_line(const std::string& text, const std::string& path, size_t line) {
  nlohmann::json report;
  try {
    report = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::BadInput, path, ":", line, ": not a JSON report (", e.what(), ")");
  }
  BAGNET_CHECK(report.is_object() && report.value("schema", "") == kReportSchema && report.contains("image") &&
                   report["image"].is_object() && report["image"].contains("index") &&
                   report["image"]["index"].is_number_integer() && report["image"]["index"].get<int64_t>() >= 0,
               ErrorKind::BadInput, path, ":", line, ": not a ", kReportSchema, " document");
  const nlohmann::json& version = report["version"];
  BAGNET_CHECK(version == kReportVersion, ErrorKind::BadInput, path, ":", line, ": report schema version ",
               version.dump(), ", this program reads version ", kReportVersion,
               " (write the reports again into a new folder)");
  return report;
}

// Hands one report to a reader. Readers take the schema's fields as given; a line that is a report
// document but lacks one, or has it with another type, is bad input at this line, not a crash.
void hand_over(const std::function<void(const nlohmann::json&)>& visit, const nlohmann::json& report,
               const std::string& path, size_t line) {
  try {
    visit(report);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::BadInput, path, ":", line, ": a report without the fields of its schema (", e.what(), ")");
  }
}

}  // namespace

void visit_report_stream(std::istream& in, const std::string& path,
                         const std::function<void(const nlohmann::json&)>& visit) {
  // Pass 1: where each report's line is, by index (only complete lines, as read_report_lines).
  struct Where {
    int64_t index;
    std::streamoff offset;
    size_t length, line;
  };
  std::vector<Where> lines;
  std::string text;
  std::streamoff offset = 0;
  for (size_t line = 1; std::getline(in, text); ++line) {
    if (in.eof()) break;  // no newline: a torn last line
    lines.push_back({parse_report_line(text, path, line)["image"]["index"].get<int64_t>(), offset, text.size(), line});
    offset += static_cast<std::streamoff>(text.size()) + 1;
  }
  std::stable_sort(lines.begin(), lines.end(), [](const Where& a, const Where& b) { return a.index < b.index; });
  for (size_t i = 1; i < lines.size(); ++i)
    BAGNET_CHECK(lines[i].index != lines[i - 1].index, ErrorKind::BadInput, path, ":", lines[i].line, ": sample ",
                 lines[i].index, " reported twice (also line ", lines[i - 1].line, ")");
  // Pass 2: one report at a time, in index order.
  in.clear();
  for (const Where& w : lines) {
    in.seekg(w.offset);
    text.resize(w.length);
    in.read(text.data(), static_cast<std::streamsize>(w.length));
    BAGNET_CHECK(in.good(), ErrorKind::BadInput, path, ": changed while being read");
    hand_over(visit, parse_report_line(text, path, w.line), path, w.line);
  }
}

std::streamoff scan_report_stream(std::istream& in, const std::string& path,
                                  const std::function<void(const nlohmann::json&)>& visit, bool& torn) {
  std::string text;
  std::streamoff complete = 0;  // bytes of the complete lines read so far
  torn = false;
  for (size_t line = 1; std::getline(in, text); ++line) {
    if (in.eof()) {  // a torn last line: the writer was killed before its newline
      torn = true;
      return complete;
    }
    hand_over(visit, parse_report_line(text, path, line), path, line);
    complete += static_cast<std::streamoff>(text.size()) + 1;
  }
  BAGNET_CHECK(!in.bad(), ErrorKind::BadInput, path, ": read error");
  return complete;
}

}  // namespace detail

void visit_report_lines(const std::string& path, const std::function<void(const nlohmann::json&)>& visit) {
  std::ifstream in(path, std::ios::binary);
  BAGNET_CHECK(in.good(), ErrorKind::BadInput, path, ": cannot open (", std::strerror(errno), ")");
  detail::visit_report_stream(in, path, visit);
}

void scan_report_lines(const std::string& path, bool repair, const std::function<void(const nlohmann::json&)>& visit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return;
    fail(ErrorKind::BadInput, path, ": cannot open (", std::strerror(errno), ")");
  }
  bool torn = false;
  const std::streamoff complete = detail::scan_report_stream(in, path, visit, torn);
  if (torn && repair) {  // everything before the torn line stands
    in.close();
    std::error_code ec;
    std::filesystem::resize_file(path, static_cast<uintmax_t>(complete), ec);
    BAGNET_CHECK(!ec, ErrorKind::BadInput, path, ": cannot truncate the incomplete last line (", ec.message(), ")");
  }
}

std::vector<nlohmann::json> read_report_lines(const std::string& path, bool repair) {
  std::vector<nlohmann::json> out;
  scan_report_lines(path, repair, [&](const nlohmann::json& report) { out.push_back(report); });
  return out;
}

void sort_report_lines(const std::string& path, const std::function<void(const nlohmann::json&)>& visit) {
  write_file_atomically(path, [&](std::ostream& out) {
    visit_report_lines(path, [&](const nlohmann::json& report) {
      out << to_json_text(report) << '\n';
      if (visit) visit(report);
    });
  });
}

void write_report_lines(const std::string& path, std::vector<nlohmann::json> reports) {
  auto index = [](const nlohmann::json& r) { return r.at("image").at("index").get<int64_t>(); };
  std::stable_sort(reports.begin(), reports.end(),
                   [&](const nlohmann::json& a, const nlohmann::json& b) { return index(a) < index(b); });
  for (size_t i = 1; i < reports.size(); ++i)
    BAGNET_CHECK(index(reports[i]) != index(reports[i - 1]), ErrorKind::BadInput, path, ": sample ",
                 index(reports[i]), " reported twice (", reports[i - 1]["image"]["source"].get<std::string>(), ")");
  write_file_atomically(path, [&](std::ostream& out) {
    for (const auto& r : reports) out << to_json_text(r) << '\n';
  });
}

}  // namespace bagnet
