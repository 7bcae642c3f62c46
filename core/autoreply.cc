// autoreply.cc - see autoreply.h.
#include "core/autoreply.h"

#include <array>

namespace chainmail {
namespace {

bool is_blank(char ch) {
  return ch == ' ' || ch == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_blank(s.front()) || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (is_blank(s.back()) || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// The first word of a structured value: "auto-replied; owner=x" -> "auto-replied", "bulk (x)" -> "bulk".
std::string first_word(std::string_view value) {
  value = trim(value);
  const auto end = value.find_first_of(" \t;(");
  return ascii_lower(trim(value.substr(0, end)));
}

// Splits the header section into logical lines; a line that starts with a blank continues the previous one.
std::vector<std::string_view> header_lines(std::string_view message, bool& ok) {
  std::vector<std::string_view> lines;
  std::size_t pos = 0;
  while (pos < message.size()) {
    auto nl = message.find('\n', pos);
    if (nl == std::string_view::npos) nl = message.size();
    std::string_view line = message.substr(pos, nl - pos);
    if (line.ends_with('\r')) line.remove_suffix(1);
    pos = nl + 1;
    if (line.empty()) break;  // end of the header section
    if (pos > kMaxHeaderBytes) {
      ok = false;
      break;
    }
    lines.push_back(line);
  }
  return lines;
}

constexpr std::array<std::string_view, 12> kRoleNames = {
    "mailer-daemon", "mailer",   "postmaster", "listserv",     "majordomo", "nobody",
    "noreply",       "no-reply", "donotreply", "do-not-reply", "bounce",    "bounces",
};
constexpr std::array<std::string_view, 5> kRoleSuffixes = {"-request", "-owner", "-bounces", "-bounce",
                                                           "-noreply"};

}  // namespace

std::optional<std::string_view> HeaderFields::get(std::string_view name) const {
  for (const auto& [n, v] : fields) {
    if (iequals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

HeaderFields parse_header_fields(std::string_view message) {
  HeaderFields out;
  for (const auto line : header_lines(message, out.ok)) {
    if (is_blank(line.front())) {
      if (out.fields.empty()) {
        out.ok = false;
        continue;
      }
      out.fields.back().second += ' ';
      out.fields.back().second += trim(line);
      continue;
    }
    const auto colon = line.find(':');
    const std::string_view name =
        colon == std::string_view::npos ? std::string_view{} : line.substr(0, colon);
    bool good = !name.empty();
    for (const char ch : name) good = good && ch > 32 && ch < 127;
    if (!good) {
      // A line that is not a field (mbox "From " line, garbage): note it and go on; the decision treats a
      // malformed header section as "do not answer".
      out.ok = false;
      continue;
    }
    if (out.fields.size() >= kMaxHeaderFields) {
      out.ok = false;
      break;
    }
    out.fields.emplace_back(std::string(name), std::string(trim(line.substr(colon + 1))));
  }
  return out;
}

bool is_role_sender(std::string_view local_part) {
  const std::string local = ascii_lower(local_part);
  for (const auto name : kRoleNames) {
    if (local == name) return true;
  }
  if (local.starts_with("owner-")) return true;
  for (const auto suffix : kRoleSuffixes) {
    if (local.ends_with(suffix)) return true;
  }
  return false;
}

ReplyDecision should_reply(const Config& config, std::string_view envelope_sender,
                           const HeaderFields& headers) {
  auto no = [](std::string why) { return ReplyDecision{false, std::move(why), std::nullopt}; };
  const auto sender = trim(envelope_sender);
  if (sender.empty() || sender == "<>") return no("null sender");
  const auto parsed = parse_address(sender);
  if (!parsed.address) return no("envelope sender is not a valid address");
  const Address& from = *parsed.address;
  if (from.domain.front() == '[') return no("sender at an address literal");
  if (is_role_sender(from.local)) return no("sender is a role or robot address (" + from.local + ")");
  if (config.is_hosted_domain(from.domain) ||
      (!config.routing.service_domain.empty() && iequals(from.domain, config.routing.service_domain)) ||
      (!config.routing.mailbox_domain.empty() && iequals(from.domain, config.routing.mailbox_domain)))
    return no("sender is one of our own addresses");
  if (!headers.ok) return no("header section too large or malformed");
  for (const auto& [name, value] : headers.fields) {
    const std::string lower = ascii_lower(name);
    if (lower.starts_with("list-")) return no("mailing list (" + clean_header_text(name, 40) + ")");
    if (lower == "precedence") {
      const auto p = first_word(value);
      if (p == "bulk" || p == "junk" || p == "list") return no("Precedence: " + p);
    }
    if (lower == "auto-submitted" && first_word(value) != "no")
      return no("Auto-Submitted: " + clean_header_text(value, 40));
    if (lower == "x-auto-response-suppress") {
      const std::string v = ascii_lower(value);
      if (v.find("all") != std::string::npos || v.find("oof") != std::string::npos ||
          v.find("autoreply") != std::string::npos)
        return no("X-Auto-Response-Suppress");
    }
  }
  return {true, "reply", from};
}

std::optional<std::string> clean_msg_id(std::string_view text) {
  text = trim(text);
  if (text.size() < 5 || text.size() > kMaxMessageId || text.front() != '<' || text.back() != '>')
    return std::nullopt;
  const auto inner = text.substr(1, text.size() - 2);
  const auto at = inner.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == inner.size()) return std::nullopt;
  for (const char ch : inner) {
    if (ch <= 32 || ch >= 127 || ch == '<' || ch == '>' || ch == '"' || ch == '\\') return std::nullopt;
  }
  return std::string(text);
}

std::string clean_header_text(std::string_view text, std::size_t max) {
  std::string out;
  bool blank = false;
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (u <= 32 || u == 127) {
      blank = !out.empty();
      continue;
    }
    if (blank) out += ' ';
    blank = false;
    out += u > 127 ? '?' : ch;
    if (out.size() >= max) break;
  }
  return out;
}

std::string rate_key(const Address& service, const Address& sender) {
  // FNV-1a, 64 bits, twice with different offsets: stable across builds and platforms (std::hash is not).
  // The two are joined with a space, which a serialised address holds only inside quotes.
  const std::string text = ascii_lower(service.str()) + " " + ascii_lower(sender.local) + "@" + sender.domain;
  auto fnv = [&text](std::uint64_t h) {
    for (const char ch : text) {
      h ^= static_cast<unsigned char>(ch);
      h *= 0x100000001b3ULL;
    }
    return h;
  };
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string out;
  for (const std::uint64_t h : {fnv(0xcbf29ce484222325ULL), fnv(0x84222325cbf29ce4ULL)}) {
    for (int shift = 60; shift >= 0; shift -= 4) out += kHex[(h >> static_cast<unsigned>(shift)) & 15U];
  }
  return out;
}

std::string build_reply(const ReplyParts& parts, const HeaderFields& incoming) {
  const std::string subject_in = clean_header_text(incoming.get("Subject").value_or(""), kMaxReplySubject);
  std::string subject;
  for (std::size_t i = 0; i < parts.subject.size(); ++i) {
    if (parts.subject[i] == '%' && i + 1 < parts.subject.size() && parts.subject[i + 1] == 's') {
      subject += subject_in;
      ++i;
    } else {
      subject += parts.subject[i];
    }
  }
  subject = clean_header_text(subject, 2 * kMaxReplySubject);

  std::array<char, 64> date{};
  std::tm tm{};
  gmtime_r(&parts.date, &tm);
  const std::size_t date_len = std::strftime(date.data(), date.size(), "%a, %d %b %Y %H:%M:%S +0000", &tm);

  std::string m;
  m += "From: " + parts.from.str() + "\n";
  m += "To: " + parts.to.str() + "\n";
  m += "Subject: " + subject + "\n";
  m += "Date: ";
  m.append(date.data(), date_len);
  m += "\n";
  m += "Message-ID: <" + clean_header_text(parts.message_id, 100) + "@" + parts.from.domain + ">\n";
  const auto parent = clean_msg_id(incoming.get("Message-ID").value_or(""));
  std::vector<std::string> refs;
  std::string_view rest = incoming.get("References").value_or("");
  while (!rest.empty()) {
    const auto open = rest.find('<');
    if (open == std::string_view::npos) break;
    const auto close = rest.find('>', open);
    if (close == std::string_view::npos) break;
    if (auto id = clean_msg_id(rest.substr(open, close - open + 1))) refs.push_back(std::move(*id));
    rest.remove_prefix(close + 1);
  }
  if (parent) {
    refs.push_back(*parent);
    m += "In-Reply-To: " + *parent + "\n";
  }
  if (refs.size() > kMaxReferences) refs.erase(refs.begin(), refs.end() - kMaxReferences);
  if (!refs.empty()) {
    m += "References:";
    for (const auto& r : refs) m += " " + r + (&r == &refs.back() ? "" : "\n");
    m += "\n";
  }
  m += "Auto-Submitted: auto-replied\n";
  m += "X-Auto-Response-Suppress: All\n";
  m += "MIME-Version: 1.0\n";
  m += "Content-Type: text/plain; charset=utf-8\n";
  m += "Content-Transfer-Encoding: 8bit\n\n";
  std::size_t line = 0;
  for (const char ch : parts.body) {
    if (ch == '\0' || ch == '\r') continue;
    if (ch == '\n') {
      line = 0;
    } else if (++line > 998) {
      m += '\n';
      line = 1;
    }
    m += ch;
  }
  if (!m.ends_with('\n')) m += '\n';
  return m;
}

}  // namespace chainmail
