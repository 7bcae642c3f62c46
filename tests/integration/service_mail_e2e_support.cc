// service_mail_e2e_support.cc: see service_mail_e2e_support.h.
#include "service_mail_e2e_support.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <system_error>

#include "core/address.h"  // iequals
#include "harness/files.h"
#include "harness/paths.h"
#include "harness/process.h"

namespace chainmail::integration {
namespace {

constexpr const char* kPostfixDefaults = "/etc/postfix";

std::string base64_lines(std::string_view data) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t line = 0;
  for (std::size_t i = 0; i < data.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, data.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      v <<= 8U;
      if (k < n) v |= static_cast<unsigned char>(data[i + k]);
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out += k <= n ? kAlphabet[(v >> (18U - 6U * k)) & 0x3FU] : '=';
    }
    line += 4;
    if (line >= 76) {
      out += "\r\n";
      line = 0;
    }
  }
  if (line != 0) out += "\r\n";
  return out;
}

std::vector<std::string> strings_of(const nlohmann::json& out, const char* key) {
  std::vector<std::string> values;
  if (!out.contains(key) || !out[key].is_array()) return values;
  for (const auto& v : out[key]) values.push_back(v.get<std::string>());
  return values;
}

}  // namespace

PrivatePostfixDefaults::PrivatePostfixDefaults(const std::filesystem::path& dir)
    : copy_(dir / "etc-postfix") {
  std::filesystem::copy(
      kPostfixDefaults, copy_,
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks);
  allow({});
  if (::unshare(CLONE_NEWNS) != 0)
    throw std::system_error(errno, std::generic_category(), "unshare(CLONE_NEWNS)");
  // Without this, a bind mount under a shared "/" would propagate to the host's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    throw std::system_error(errno, std::generic_category(), "mount --make-rprivate /");
  }
  if (::mount(copy_.c_str(), kPostfixDefaults, nullptr, MS_BIND, nullptr) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "mount --bind " + copy_.string() + " /etc/postfix");
  }
}

void PrivatePostfixDefaults::allow(const std::filesystem::path& config_dir) {
  if (!config_dir.empty()) allowed_.push_back(config_dir.string());
  std::string text =
      "# Written by tests/integration/service_mail_e2e_support.cc into a private mount of /etc/postfix: "
      "only\n"
      "# which configuration folders unprivileged sendmail/postdrop may use.\n"
      "compatibility_level = 3.6\nalternate_config_directories =";
  for (const auto& dir : allowed_) text += " " + dir;
  text += "\n";
  harness::write_file(copy_ / "main.cf", text);
  // Postfix re-reads a file changed within the last second (util/load_file.c), sleeping in between.
  std::filesystem::last_write_time(copy_ / "main.cf",
                                   std::filesystem::file_time_type::clock::now() - std::chrono::minutes(1));
}

void write_sendmail_wrapper(const std::filesystem::path& path, const std::filesystem::path& config_dir) {
  harness::write_file(path,
                      "#!/bin/sh\n"
                      "# autoreply.sendmail for the service-mail end-to-end suite: this test's Postfix.\n"
                      "exec /usr/sbin/sendmail -C '" +
                          config_dir.string() + "' \"$@\"\n");
  std::filesystem::permissions(path, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                         std::filesystem::perms::group_exec |
                                         std::filesystem::perms::others_read |
                                         std::filesystem::perms::others_exec);
}

std::vector<std::string> ImapFetch::messages() const {
  return strings_of(out, "messages");
}

std::vector<std::string> ImapFetch::list() const {
  return strings_of(out, "list");
}

std::vector<std::string> ImapFetch::lsub() const {
  return strings_of(out, "lsub");
}

ImapFetch imap_fetch(const ImapQuery& query) {
  const std::filesystem::path script =
      harness::source_dir() / "tests" / "integration" / "service_mail_e2e_imap.py";
  std::vector<std::string> argv = {"/usr/bin/python3", script.string(),
                                   "--server",         "127.0.0.1:" + std::to_string(query.port),
                                   "--user",           query.user,
                                   "--password",       query.password,
                                   "--mailbox",        query.mailbox,
                                   "--count",          std::to_string(query.count),
                                   "--wait",           std::to_string(query.wait_s)};
  if (!query.header.empty()) {
    argv.emplace_back("--header");
    argv.push_back(query.header);
  }
  const harness::RunResult r = harness::run(argv, {}, std::chrono::seconds(60));
  ImapFetch f;
  f.raw = r.out + r.err;
  try {
    f.out = nlohmann::json::parse(r.out);
  } catch (const nlohmann::json::exception&) {
    f.out = nlohmann::json::object();
  }
  return f;
}

std::string reheader(std::string_view eml, const std::string& header) {
  const std::string text = lf(eml);
  const std::size_t end = text.find("\n\n");
  const std::string_view head = std::string_view(text).substr(0, end);
  const std::string_view body =
      end == std::string::npos ? std::string_view() : std::string_view(text).substr(end + 2);
  std::string kept;
  bool keeping = false;
  std::size_t pos = 0;
  while (pos < head.size()) {
    std::size_t eol = head.find('\n', pos);
    if (eol == std::string_view::npos) eol = head.size();
    const std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty()) continue;
    if (line.front() != ' ' && line.front() != '\t') {
      const std::string_view name = line.substr(0, line.find(':'));
      keeping = iequals(name, "MIME-Version") || iequals(name, "Content-Type") ||
                iequals(name, "Content-Transfer-Encoding");
    }
    if (keeping) {
      kept += line;
      kept += "\r\n";
    }
  }
  std::string out = header + kept + "\r\n";
  for (const char c : body) {
    if (c == '\n') out += '\r';
    out += c;
  }
  // As SMTP carries it: the last line ends with CRLF.
  if (!out.ends_with("\r\n")) out += "\r\n";
  return out;
}

std::string with_attachment(const std::string& header, std::string_view attachment, std::string_view filename,
                            std::string_view content_type) {
  const std::string boundary = "=_chainmail_e2e_boundary";
  std::string m = header;
  m += "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n";
  m += "--" + boundary + "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
  m += "This is an aggregate report for your domain.\r\n\r\n";
  m += "--" + boundary + "\r\nContent-Type: ";
  m += content_type;
  m += "; name=\"";
  m += filename;
  m += "\"\r\nContent-Disposition: attachment; filename=\"";
  m += filename;
  m += "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n";
  m += base64_lines(attachment);
  m += "\r\n--" + boundary + "--\r\n";
  return m;
}

std::string lf(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    out += text[i];
  }
  return out;
}

std::string body_of(std::string_view message) {
  const std::string text = lf(message);
  const std::size_t end = text.find("\n\n");
  return end == std::string::npos ? std::string() : text.substr(end + 2);
}

}  // namespace chainmail::integration
