#pragma once
// Output files appear complete or not at all: content goes to a temporary file beside the target,
// which is flushed to the disk (fsync) and renamed over it only after a successful write; the folder
// is flushed after the rename, so that a power cut leaves the old file or the new one, never an
// empty or partial one.
#include <functional>
#include <ostream>
#include <string>

namespace bagnet {

// Throws Error(Output) when the file cannot be created or written (missing directory, permissions,
// disk full; never through a link placed at the temporary name) and
// rethrows whatever `write` throws; the temporary file is removed in both cases.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace bagnet
