// Putting a finished file in place so that a crash at any moment leaves
// either the old file or the complete new one, never a damaged mix.
#pragma once

#include <string>

namespace st {

// Flushes `temp` to disk, renames it over `final_path`, and flushes the
// folder so that the rename itself survives a power cut.  Throws st::Error
// naming the file on any failure, after removing `temp` (and leaves
// `final_path` untouched).
void replace_file_durably(const std::string& temp, const std::string& final_path);

}  // namespace st
