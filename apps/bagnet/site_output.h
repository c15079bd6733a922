#pragma once
// The evidence browser's flags and build, shared by `report --html`, `merge --html` and `browse`.
#include <bagnet/site.h>

#include <cxxopts.hpp>

#include <string>

namespace bagnet::cli {

void add_site_flags(cxxopts::Options& options);
// Throws Error(InvalidArgument) for an unknown or non-diverging colour map.
SiteOptions read_site_flags(const cxxopts::ParseResult& parsed);
// Builds OUTDIR/index.html with a progress bar and prints where it is.
void build_site_with_progress(const std::string& dir, SiteOptions options);
// The same into a folder the caller holds open to write.
void build_site_with_progress(ReportFolder& folder, SiteOptions options);

}  // namespace bagnet::cli
