// files.h: small file helpers the daemon wrappers share: read and write whole files, the tail of a log for
// error messages, and @NAME@ template substitution (conf/postfix/*.cf.in, generated daemon configurations).
//
// DIAGNOSTICS: read_file/write_file throw std::runtime_error naming the path; fill_template throws
// std::runtime_error naming the first placeholder it has no value for, so a template that gained a variable
// fails loudly instead of reaching a daemon verbatim.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace chainmail::harness {

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, std::string_view text);

// The last `max` bytes of a log, or the error reading it (for exception messages; never throws).
std::string log_tail(const std::filesystem::path& path, std::size_t max = 4000);

// `text` with every @NAME@ replaced by values.at("NAME"). Throws when a placeholder has no value.
std::string fill_template(std::string_view text,
                          const std::map<std::string, std::string, std::less<>>& values);

// Polls `path` every 20 ms until its text contains `needle` (true) or `timeout` has passed (false).
bool wait_for_text(const std::filesystem::path& path, std::string_view needle,
                   std::chrono::milliseconds timeout);

}  // namespace chainmail::harness
