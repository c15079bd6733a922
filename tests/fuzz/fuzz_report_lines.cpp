// The reports.jsonl readers that resume, merge and browse use (report_file.cpp): read, repair a torn
// end, visit in order, summarise, and sort in place.
#include "fuzz_input.h"

#include <bagnet/report.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bagnet::fuzz::write_scratch("reports.jsonl", data, size);
  bagnet::fuzz::expect_clean([&] {
    bagnet::ReportSummary summary;
    bagnet::scan_report_lines(path, false, [&](const nlohmann::json& report) { summary.add(report); });
    summary.finish(static_cast<int64_t>(size));
  });
  bagnet::fuzz::expect_clean([&] {
    bagnet::ReportSummary summary;
    bagnet::visit_report_lines(path, [&](const nlohmann::json& report) { summary.add(report); });
  });
  bagnet::fuzz::expect_clean([&] { bagnet::read_report_lines(path, true); });
  bagnet::fuzz::expect_clean([&] { bagnet::sort_report_lines(path); });
  return 0;
}
