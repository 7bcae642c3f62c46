// files.cc: see files.h.
#include "harness/files.h"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace chainmail::harness {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string log_tail(const std::filesystem::path& path, std::size_t max) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return text.size() > max ? "..." + text.substr(text.size() - max) : text;
}

std::string fill_template(std::string_view text,
                          const std::map<std::string, std::string, std::less<>>& values) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t at = text.find('@', pos);
    if (at == std::string_view::npos) break;
    const std::size_t end = text.find('@', at + 1);
    const std::string_view name =
        end == std::string_view::npos ? std::string_view{} : text.substr(at + 1, end - at - 1);
    const bool is_name = !name.empty() && name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                                              std::string_view::npos;
    if (!is_name) {  // A lone '@' (an address in a comment): keep it and look further.
      out.append(text.substr(pos, at + 1 - pos));
      pos = at + 1;
      continue;
    }
    const auto value = values.find(name);
    if (value == values.end()) {
      throw std::runtime_error("template placeholder @" + std::string(name) + "@ has no value");
    }
    out.append(text.substr(pos, at - pos));
    out.append(value->second);
    pos = end + 1;
  }
  out.append(text.substr(pos));
  return out;
}

bool wait_for_text(const std::filesystem::path& path, std::string_view needle,
                   std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::ostringstream text;
      text << in.rdbuf();
      if (text.str().find(needle) != std::string::npos) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace chainmail::harness
