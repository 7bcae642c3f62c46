// sieve_support.cc: see sieve_support.h.
#include "sieve_support.h"

#include <stdexcept>
#include <string>

#include "harness/files.h"
#include "harness/paths.h"

namespace chainmail::integration {
namespace {

// Replaces the one line of `text` that starts with `prefix` by `line`; throws when there is none.
void replace_line(std::string& text, std::string_view prefix, std::string_view line) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t eol = text.find('\n', pos);
    const std::size_t end = eol == std::string::npos ? text.size() : eol;
    if (std::string_view(text).substr(pos, end - pos).starts_with(prefix)) {
      text.replace(pos, end - pos, line);
      return;
    }
    pos = end + 1;
  }
  throw std::runtime_error("sieve_chainmail_conf: no line starting with " + std::string(prefix));
}

}  // namespace

std::string sieve_chainmail_conf(std::string_view ldap_uri) {
  const std::filesystem::path conf = harness::source_dir() / "conf";
  std::string text = harness::read_file(conf / "chainmail-ldif.conf");
  replace_line(text, "ldif_file =", "ldif_file = \"" + (conf / "ldap" / "demo.ldif").string() + "\"");
  replace_line(text, "bind_password_file =",
               "bind_password_file = \"" + (conf / "ldap" / "chainmail.secret").string() + "\"");
  if (!ldap_uri.empty()) {
    std::string uris = "uris = [\"";
    uris += ldap_uri;
    uris += "\"]";
    replace_line(text, "uris =", uris);
    replace_line(text, "connect_timeout_ms =", "connect_timeout_ms = 500");
    replace_line(text, "search_timeout_ms =", "search_timeout_ms = 500");
    replace_line(text, "max_entries =", "max_entries = 0");
  }
  text += "\n[milter]\nauthserv_id = \"";
  text += kSieveAuthservId;
  text += "\"\n";
  return text;
}

std::string sieve_message(std::string_view subject, std::string_view authres_fields) {
  std::string text(authres_fields);
  text += "From: sender@example.net\nTo: list@pydis.wtf\nSubject: ";
  text += subject;
  text += "\nMessage-ID: <";
  text += subject;
  text += "@example.net>\n\nHello ";
  text += subject;
  text += "\n";
  return text;
}

}  // namespace chainmail::integration
