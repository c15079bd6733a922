// reports.jsonl: one report per line, appended and flushed line by line while a run goes, so a
// killed run leaves only complete lines plus at most one torn last line, which is dropped here.
#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/report.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace bagnet {

std::vector<nlohmann::json> read_report_lines(const std::string& path, bool repair) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return out;
    fail(ErrorKind::BadInput, path, ": cannot open (", std::strerror(errno), ")");
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t start = 0, line = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    ++line;
    if (end == std::string::npos) {
      // A torn last line: the writer was killed before its newline. Everything before it stands.
      if (repair) {
        std::error_code ec;
        std::filesystem::resize_file(path, start, ec);
        BAGNET_CHECK(!ec, ErrorKind::BadInput, path, ": cannot truncate the incomplete last line (", ec.message(), ")");
      }
      break;
    }
    try {
      out.push_back(nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(start),
                                          text.begin() + static_cast<std::ptrdiff_t>(end)));
    } catch (const nlohmann::json::exception& e) {
      fail(ErrorKind::BadInput, path, ":", line, ": not a JSON report (", e.what(), ")");
    }
    BAGNET_CHECK(out.back().is_object() && out.back().value("schema", "") == kReportSchema &&
                     out.back().contains("image") && out.back()["image"].contains("index"),
                 ErrorKind::BadInput, path, ":", line, ": not a ", kReportSchema, " document");
    const nlohmann::json& version = out.back()["version"];
    BAGNET_CHECK(version == kReportVersion, ErrorKind::BadInput, path, ":", line, ": report schema version ",
                 version.dump(), ", this program reads version ", kReportVersion,
                 " (write the reports again into a new folder)");
    start = end + 1;
  }
  return out;
}

void write_report_lines(const std::string& path, std::vector<nlohmann::json> reports) {
  auto index = [](const nlohmann::json& r) { return r.at("image").at("index").get<int64_t>(); };
  std::stable_sort(reports.begin(), reports.end(),
                   [&](const nlohmann::json& a, const nlohmann::json& b) { return index(a) < index(b); });
  for (size_t i = 1; i < reports.size(); ++i)
    BAGNET_CHECK(index(reports[i]) != index(reports[i - 1]), ErrorKind::BadInput, path, ": sample ",
                 index(reports[i]), " reported twice (", reports[i - 1]["image"]["source"].get<std::string>(), ")");
  write_file_atomically(path, [&](std::ostream& out) {
    for (const auto& r : reports) out << r.dump() << '\n';
  });
}

}  // namespace bagnet
