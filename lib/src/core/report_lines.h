#pragma once
// reports.jsonl read from any stream (a file opened by path, or a report folder's confined
// descriptor): the line readers behind visit_report_lines and scan_report_lines (report.h).
#include <nlohmann/json.hpp>

#include <functional>
#include <istream>
#include <string>

namespace bagnet::detail {

// visit_report_lines over `in` (seekable); `path` names it in errors.
void visit_report_stream(std::istream& in, const std::string& path, const std::function<void(const nlohmann::json&)>& visit);
// scan_report_lines over `in` without repair: returns the bytes of the complete lines and sets
// `torn` when a last line lacks its newline.
std::streamoff scan_report_stream(std::istream& in, const std::string& path,
                                  const std::function<void(const nlohmann::json&)>& visit, bool& torn);

}  // namespace bagnet::detail
