// service_mail_e2e_support.h: what the service-mail end-to-end suite (service_mail_e2e_test.cc) needs beyond
// the shared harness: Postfix's sendmail usable by an unprivileged user against the test's Postfix instance,
// an IMAP client (service_mail_e2e_imap.py), and corpus e-mails given our own envelope-worthy header.
//
//   PrivatePostfixDefaults defaults(dir);             // before any daemon starts: this process and its
//   defaults.allow(mta.config_dir());                 // children see a private /etc/postfix
//   write_sendmail_wrapper(dir / "sendmail", mta.config_dir());   // autoreply.sendmail
//   ImapFetch f = imap_fetch({port, "dmarc", "pw", "Reports.New", "Message-ID:<id>"});
//
// Why PrivatePostfixDefaults: the pipe runs chainmail-service-mail as an unprivileged user, which runs
// sendmail, which runs the set-gid postdrop. Postfix lets a non-root user name a configuration folder other
// than /etc/postfix (sendmail -C, MAIL_CONFIG) only when the default main.cf lists it in
// alternate_config_directories (postdrop: "open file /etc/postfix/main.cf" without one). This host has no
// /etc/postfix/main.cf, and the tests must not write one: the suite moves its own process into a private
// mount namespace (unshare(CLONE_NEWNS), "/" made private so nothing propagates back) and mounts a copy of
// /etc/postfix with that main.cf over it. Every daemon the suite starts afterwards inherits the view; the
// host's /etc/postfix is never touched, and the namespace ends with the process.
//
// SECURITY: test code only; the processes are root and loopback-only.
// DIAGNOSTICS: PrivatePostfixDefaults throws std::system_error naming the failing step; imap_fetch reports
// the client's raw output in ImapFetch::raw for failure messages.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace chainmail::integration {

class PrivatePostfixDefaults {
 public:
  // Unshares the mount namespace of the calling thread (call it from the main thread, before any daemon is
  // started) and mounts dir/etc-postfix (a copy of /etc/postfix) over /etc/postfix.
  explicit PrivatePostfixDefaults(const std::filesystem::path& dir);
  // Lists `config_dir` in the private /etc/postfix/main.cf (alternate_config_directories).
  void allow(const std::filesystem::path& config_dir);

 private:
  std::filesystem::path copy_;
  std::vector<std::string> allowed_;
};

// An executable /bin/sh script at `path` that runs Postfix's sendmail with -C config_dir and its own
// arguments: what autoreply.sendmail names (one path, run with a clean environment, so the configuration
// folder cannot come from MAIL_CONFIG).
void write_sendmail_wrapper(const std::filesystem::path& path, const std::filesystem::path& config_dir);

struct ImapQuery {
  std::uint16_t port = 0;
  std::string user;
  std::string password;
  std::string mailbox;
  std::string header;  // "Name:value": only messages whose header Name contains value; empty: all
  int count = 1;       // wait for at least this many
  double wait_s = 10;
};

struct ImapFetch {
  nlohmann::json out;  // the client's JSON (service_mail_e2e_imap.py); an empty object when it printed none
  std::string raw;

  bool logged_in() const { return out.value("login", "") == "OK"; }
  std::vector<std::string> messages() const;  // CRLF as served
  std::vector<std::string> list() const;
  std::vector<std::string> lsub() const;
};

ImapFetch imap_fetch(const ImapQuery& query);

// `eml` (a corpus e-mail) with its header replaced by `header` (CRLF lines, without the blank line), keeping
// only its MIME fields (MIME-Version, Content-Type, Content-Transfer-Encoding), so that the milter validates
// our test sender instead of the reporter's long-gone signatures. The result ends with CRLF, as SMTP sends
// it.
std::string reheader(std::string_view eml, const std::string& header);

// A multipart/mixed message with `header` on top, a text part and `attachment` as a base64 part.
std::string with_attachment(const std::string& header, std::string_view attachment, std::string_view filename,
                            std::string_view content_type);

// `text` with every CRLF turned into LF.
std::string lf(std::string_view text);

// The body of a message (after the first empty line), or "" when it has none.
std::string body_of(std::string_view message);

}  // namespace chainmail::integration
