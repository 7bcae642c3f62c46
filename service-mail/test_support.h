// test_support.h - helpers shared by the service-mail tests: temp folders, files, messages, Maildir listings.
#pragma once

#include <dirent.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace chainmail::testing {

inline std::filesystem::path make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "service-mail-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return {};
  return tmpl;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void spit(const std::filesystem::path& p, std::string_view data) {
  std::ofstream out(p, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline std::string base64(std::string_view in) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t line = 0;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const auto b0 = static_cast<unsigned char>(in[i]);
    const auto b1 = i + 1 < in.size() ? static_cast<unsigned char>(in[i + 1]) : 0U;
    const auto b2 = i + 2 < in.size() ? static_cast<unsigned char>(in[i + 2]) : 0U;
    const unsigned v = (b0 << 16U) | (b1 << 8U) | b2;
    out += kAlphabet[(v >> 18U) & 63U];
    out += kAlphabet[(v >> 12U) & 63U];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6U) & 63U] : '=';
    out += i + 2 < in.size() ? kAlphabet[v & 63U] : '=';
    if ((line += 4) >= 76) {
      out += '\n';
      line = 0;
    }
  }
  return out + "\n";
}

// A report attached the way most reporters send it: a short text part and the file, base64.
inline std::string report_message(std::string_view filename, std::string_view content_type,
                                  std::string_view data) {
  std::string m =
      "From: noreply-dmarc@reporter.example\nTo: dmarc@pydis.wtf\n"
      "Subject: Report domain: example.com Submitter: reporter.example\nMIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nA DMARC report.\n"
      "--b1\nContent-Type: ";
  m += content_type;
  m += "; name=\"";
  m += filename;
  m += "\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"";
  m += filename;
  m += "\"\n\n";
  m += base64(data);
  m += "--b1--\n";
  return m;
}

inline std::string content_type_for(std::string_view name) {
  if (name.ends_with(".gz")) return "application/gzip";
  if (name.ends_with(".zip")) return "application/zip";
  return "text/xml";
}

// The files in a Maildir folder's subdirectory ("new", "tmp", "cur").
inline std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) out.push_back(e.path());
  return out;
}

}  // namespace chainmail::testing
