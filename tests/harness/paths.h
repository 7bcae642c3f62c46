// paths.h: where the harness finds the source tree, the programs under test and host tools.
//
// The two trees are fixed at configure time (compile definitions on chainmail_harness), so tests run from any
// working directory, including ctest's.
#pragma once

#include <filesystem>
#include <string_view>

namespace chainmail::harness {

// Root of the chainmail source tree (holds conf/, core/, tests/).
std::filesystem::path source_dir();

// Folder where the build puts the programs under test (CMAKE_RUNTIME_OUTPUT_DIRECTORY).
std::filesystem::path build_bin_dir();

// Absolute path of a host program: `name` itself when it contains a '/', else the first executable match in
// PATH and then /usr/sbin and /sbin (slapd, slapadd and postmap live there, and a non-root PATH may lack
// them). Throws std::runtime_error when nothing matches.
std::filesystem::path find_program(std::string_view name);

}  // namespace chainmail::harness
