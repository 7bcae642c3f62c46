// authres.cc - see authres.h. The parser is a cursor over the field value with one function per ABNF rule
// of RFC 8601 section 2.2 (and the RFC 5322 / RFC 2045 rules it borrows); comments nest by counting, never by
// recursion.
#include "core/authres.h"

#include <algorithm>
#include <stdexcept>

#include "core/address.h"

namespace chainmail::authres {
namespace {

bool is_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool is_wsp(unsigned char c) {
  return c == ' ' || c == '\t';
}
bool is_ctl(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}
// RFC 2045 token: US-ASCII CHAR except SPACE, CTLs and tspecials.
bool is_token_char(unsigned char c) {
  constexpr std::string_view tspecials = "()<>@,;:\\\"/[]?=";
  return c > 0x20 && c < 0x7f && tspecials.find(static_cast<char>(c)) == std::string_view::npos;
}
// RFC 5322 atext (dot-atom local parts may hold '/', '=' and '?', which tokens may not).
bool is_atext(unsigned char c) {
  constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
  return is_alpha(c) || is_digit(c) || specials.find(static_cast<char>(c)) != std::string_view::npos;
}
bool is_ldh(unsigned char c) {
  return is_alpha(c) || is_digit(c) || c == '-';
}
// RFC 5322 ctext and qtext, widened by RFC 6532 to UTF-8 (any octet >= 0x80).
bool is_ctext(unsigned char c) {
  return (c >= 33 && c <= 39) || (c >= 42 && c <= 91) || (c >= 93 && c <= 126) || c >= 0x80;
}
bool is_qtext(unsigned char c) {
  return c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126) || c >= 0x80;
}
// What may follow a backslash in a quoted-pair: VCHAR or WSP (and UTF-8).
bool is_quotable(unsigned char c) {
  return (c >= 0x21 && c <= 0x7e) || is_wsp(c) || c >= 0x80;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_token_char(c); });
}

// RFC 8601 Keyword = ldh-str (RFC 5321): letters, digits and hyphens, not ending in a hyphen.
bool is_keyword(std::string_view s) {
  return !s.empty() && s.back() != '-' && std::all_of(s.begin(), s.end(), [](char c) { return is_ldh(c); });
}

// RFC 5321 Domain: sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]. One label is allowed
// (RFC 6376's domain-name wants two, but "root@localhost" is a real MAIL FROM).
bool is_domain_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxDomain) return false;
  std::size_t start = 0;
  while (true) {
    const auto dot = s.find('.', start);
    const auto label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || !is_keyword(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// pvalue's second form: [[local-part] "@"] domain-name, with a dot-atom local part.
bool is_address_form(std::string_view s) {
  const auto at = s.find('@');
  if (at == std::string_view::npos) return is_domain_name(s);
  const auto local = s.substr(0, at);
  return (local.empty() || is_dot_atom(local)) && is_domain_name(s.substr(at + 1));
}

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  bool at_end() const { return i_ >= s_.size(); }
  unsigned char peek() const { return at_end() ? 0 : static_cast<unsigned char>(s_[i_]); }
  bool take(char c) {
    if (at_end() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  std::size_t pos() const { return i_; }
  void seek(std::size_t i) { i_ = i; }
  std::string_view slice(std::size_t from) const { return s_.substr(from, i_ - from); }

  // CFWS, where every part is optional. False only when something malformed starts here (an unbalanced
  // comment, a line break not followed by white space inside a comment). `skipped` says whether any CFWS
  // was consumed; comment texts are appended to `comments` when given.
  bool cfws(bool& skipped, std::vector<std::string>* comments = nullptr) {
    skipped = false;
    while (!at_end()) {
      if (is_wsp(peek())) {
        ++i_;
      } else if (const auto n = fold_length(); n > 0) {
        i_ += n;
      } else if (peek() == '(') {
        std::string text;
        if (!comment(text)) return false;
        if (comments != nullptr) comments->push_back(std::move(text));
      } else {
        break;
      }
      skipped = true;
    }
    return true;
  }
  bool cfws() {
    bool skipped = false;
    return cfws(skipped);
  }

  // RFC 2045 value = token / quoted-string; the quoted-string comes back unquoted.
  std::optional<std::string> value() {
    if (peek() == '"') return quoted_string();
    auto t = run(is_token_char);
    if (t.empty()) return std::nullopt;
    return std::string(t);
  }

  std::optional<std::string> keyword() {
    const auto k = run(is_ldh);
    if (!is_keyword(k)) return std::nullopt;
    return ascii_lower(k);
  }

  bool digits() { return !run(is_digit).empty(); }

  // RFC 8601 pvalue without its surrounding CFWS: value / [[local-part] "@"] domain-name.
  std::optional<std::string> pvalue() {
    const auto start = i_;
    if (peek() == '"') {
      auto quoted = quoted_string();
      if (!quoted || peek() != '@') return quoted;
      // A quoted-string local part: the address is returned as written, quotes and all.
      ++i_;
      if (!domain_name()) return std::nullopt;
      const auto raw = slice(start);
      if (raw.find_first_of("\r\n") != std::string_view::npos) return std::nullopt;
      return std::string(raw);
    }
    if (take('@')) {
      if (!domain_name()) return std::nullopt;
      return std::string(slice(start));
    }
    const auto word = run([](unsigned char c) { return is_atext(c) || c == '.'; });
    if (word.empty()) return std::nullopt;
    if (take('@')) {
      if (!is_dot_atom(word) || !domain_name()) return std::nullopt;
      return std::string(slice(start));
    }
    if (!is_token(word)) return std::nullopt;
    return std::string(word);
  }

 private:
  // A line break that folds (CRLF or bare LF followed by WSP): its length without the WSP, else 0.
  std::size_t fold_length() const {
    if (s_.compare(i_, 2, "\r\n") == 0 && i_ + 2 < s_.size() && is_wsp(s_[i_ + 2])) return 2;
    if (peek() == '\n' && i_ + 1 < s_.size() && is_wsp(s_[i_ + 1])) return 1;
    return 0;
  }

  template <typename Pred>
  std::string_view run(Pred pred) {
    const auto start = i_;
    while (!at_end() && pred(peek())) ++i_;
    return s_.substr(start, i_ - start);
  }

  bool domain_name() {
    const auto start = i_;
    while (true) {
      if (run(is_ldh).empty()) return false;
      // A dot continues the name only when a label follows it.
      if (peek() == '.' && i_ + 1 < s_.size() && is_ldh(static_cast<unsigned char>(s_[i_ + 1]))) {
        ++i_;
        continue;
      }
      return is_domain_name(slice(start));
    }
  }

  // At '(': a comment, nested comments counted. The text keeps nested parentheses, drops the outer ones,
  // resolves quoted-pairs and unfolds line breaks.
  bool comment(std::string& text) {
    std::size_t depth = 0;
    while (!at_end()) {
      const auto c = peek();
      if (c == '(') {
        if (++depth > kMaxCommentDepth) return false;
        if (depth > 1) text += '(';
        ++i_;
      } else if (c == ')') {
        ++i_;
        if (--depth == 0) return true;
        text += ')';
      } else if (c == '\\') {
        if (i_ + 1 >= s_.size() || !is_quotable(static_cast<unsigned char>(s_[i_ + 1]))) return false;
        text += s_[i_ + 1];
        i_ += 2;
      } else if (const auto n = fold_length(); n > 0) {
        i_ += n;
      } else if (is_wsp(c) || is_ctext(c)) {
        text += static_cast<char>(c);
        ++i_;
      } else {
        return false;
      }
    }
    return false;  // unbalanced
  }

  // At '"': the quoted-string's content with quoted-pairs resolved and line breaks unfolded.
  std::optional<std::string> quoted_string() {
    ++i_;
    std::string out;
    while (!at_end()) {
      const auto c = peek();
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c == '\\') {
        if (i_ + 1 >= s_.size() || !is_quotable(static_cast<unsigned char>(s_[i_ + 1]))) return std::nullopt;
        out += s_[i_ + 1];
        i_ += 2;
      } else if (const auto n = fold_length(); n > 0) {
        i_ += n;
      } else if (is_wsp(c) || is_qtext(c)) {
        out += static_cast<char>(c);
        ++i_;
      } else {
        return std::nullopt;
      }
    }
    return std::nullopt;  // unterminated
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

std::string_view strip_final_crlf(std::string_view v) {
  if (v.ends_with("\r\n")) {
    v.remove_suffix(2);
  } else if (v.ends_with('\n')) {
    v.remove_suffix(1);
  }
  return v;
}

// [CFWS] authserv-id, and the check that it ends where an authserv-id may end.
std::optional<std::string> read_authserv_id(Reader& r) {
  if (!r.cfws()) return std::nullopt;
  auto id = r.value();
  if (!id) return std::nullopt;
  const auto next = r.peek();
  if (!r.at_end() && !is_wsp(next) && next != '(' && next != ';' && next != '\r' && next != '\n') {
    return std::nullopt;
  }
  return id;
}

// After ';': methodspec [CFWS reasonspec] [CFWS 1*propspec], and the CFWS that ends the resinfo.
std::optional<MethodResult> read_resinfo(Reader& r) {
  MethodResult m;
  auto method = r.keyword();
  if (!method) return std::nullopt;
  m.method = std::move(*method);
  if (!r.cfws()) return std::nullopt;
  if (r.take('/')) {
    if (!r.cfws() || !r.digits() || !r.cfws()) return std::nullopt;
  }
  if (!r.take('=') || !r.cfws()) return std::nullopt;
  auto result = r.keyword();
  if (!result) return std::nullopt;
  m.result = std::move(*result);

  std::vector<std::string> comments;
  bool separated = false;
  if (!r.cfws(separated, &comments)) return std::nullopt;
  for (std::size_t i = 0; i < comments.size(); ++i) {
    if (i > 0) m.comment += ' ';
    m.comment += comments[i];
  }

  bool have_reason = false;
  while (!r.at_end() && r.peek() != ';') {
    if (!separated) return std::nullopt;  // reasonspec and propspec are each preceded by CFWS
    auto word = r.keyword();
    if (!word || !r.cfws()) return std::nullopt;
    if (r.take('.')) {
      Property p;
      p.ptype = std::move(*word);
      if (!r.cfws()) return std::nullopt;
      auto name = r.keyword();
      if (!name || !r.cfws() || !r.take('=') || !r.cfws()) return std::nullopt;
      p.name = std::move(*name);
      auto value = r.pvalue();
      if (!value) return std::nullopt;
      p.value = std::move(*value);
      if (m.properties.size() >= kMaxProperties) return std::nullopt;
      m.properties.push_back(std::move(p));
    } else if (*word == "reason" && !have_reason && m.properties.empty() && r.take('=')) {
      if (!r.cfws()) return std::nullopt;
      auto value = r.value();
      if (!value) return std::nullopt;
      m.reason = std::move(*value);
      have_reason = true;
    } else {
      return std::nullopt;
    }
    if (!r.cfws(separated)) return std::nullopt;
  }
  return m;
}

// ---- formatting ----

// Cuts at a UTF-8 character boundary and replaces control characters, so that nothing can break a line.
std::string sanitize(std::string_view s) {
  if (s.size() > kMaxFormattedText) {
    std::size_t n = kMaxFormattedText;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    s = s.substr(0, n);
  }
  std::string out(s);
  for (char& c : out) {
    if (is_ctl(static_cast<unsigned char>(c))) c = '?';
  }
  return out;
}

std::string escape(std::string_view s, std::string_view specials) {
  std::string out;
  out.reserve(s.size() + 2);
  for (char c : s) {
    if (specials.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string quote(std::string_view s) {
  return '"' + escape(s, "\"\\") + '"';
}

// One unbreakable piece of output. `inner`: the space before it belongs to a comment or quoted-string, so
// a fold there must keep that space (CRLF inserted before it) instead of replacing it.
struct Piece {
  std::string text;
  bool inner = false;
};

// Appends `text`, split at its spaces when those lie inside a comment or quoted-string (`splittable`).
void add_pieces(std::vector<Piece>& pieces, const std::string& text, bool splittable) {
  if (!splittable) {
    pieces.push_back({text, false});
    return;
  }
  std::size_t start = 0;
  bool first = true;
  while (true) {
    const auto space = text.find(' ', start);
    pieces.push_back(
        {text.substr(start, space == std::string::npos ? std::string::npos : space - start), !first});
    if (space == std::string::npos) return;
    first = false;
    start = space + 1;
  }
}

void check_keyword(std::string_view what, std::string_view k) {
  if (!is_keyword(k)) {
    std::string msg = "authres::format: ";
    msg += what;
    msg += " is not an RFC 8601 keyword";
    throw std::invalid_argument(msg);
  }
}

std::vector<Piece> resinfo_pieces(const MethodResult& m) {
  check_keyword("method", m.method);
  check_keyword("result", m.result);
  std::vector<Piece> pieces;
  pieces.push_back({m.method + "=" + m.result, false});
  if (!m.comment.empty()) {
    // Built piecewise: GCC 12 warns (-Wrestrict, falsely) on "(" + std::string + ")".
    std::string comment = "(";
    comment += escape(sanitize(m.comment), "()\\");
    comment += ')';
    add_pieces(pieces, comment, true);
  }
  if (!m.reason.empty()) {
    const auto r = sanitize(m.reason);
    if (is_token(r)) {
      pieces.push_back({"reason=" + r, false});
    } else {
      add_pieces(pieces, "reason=" + quote(r), true);
    }
  }
  for (const auto& p : m.properties) {
    check_keyword("ptype", p.ptype);
    check_keyword("property", p.name);
    const auto v = sanitize(p.value);
    auto head = p.ptype + "." + p.name + "=";
    if (is_token(v) || is_address_form(v)) {
      pieces.push_back({head + v, false});
    } else {
      add_pieces(pieces, head + quote(v), true);
    }
  }
  return pieces;
}

constexpr std::size_t kTabWidth = 8;  // columns are counted as a terminal shows them, to be safe

}  // namespace

bool valid_authserv_id(std::string_view id) {
  return id.size() <= 255 && is_token(id);
}

bool same_authserv_id(std::string_view a, std::string_view b) {
  return iequals(a, b);
}

std::string format(std::string_view authserv_id, std::span<const MethodResult> results, LineEnd line_end) {
  if (!valid_authserv_id(authserv_id)) {
    throw std::invalid_argument("authres::format: authserv-id is not a token");
  }
  const std::string_view eol = line_end == LineEnd::crlf ? "\r\n" : "\n";
  std::string out(authserv_id);
  if (results.empty()) return out + "; none";
  out += ';';
  for (std::size_t k = 0; k < results.size(); ++k) {
    const auto pieces = resinfo_pieces(results[k]);
    const bool last_resinfo = k + 1 == results.size();
    out += eol;
    out += '\t';
    std::size_t col = kTabWidth;
    for (std::size_t j = 0; j < pieces.size(); ++j) {
      const auto& p = pieces[j];
      // The ';' that ends all but the last resinfo must fit on the line too.
      const std::size_t tail = (j + 1 == pieces.size() && !last_resinfo) ? 1 : 0;
      if (j == 0) {
        out += p.text;
        col += p.text.size();
      } else if (p.text.empty() || col + 1 + p.text.size() + tail <= kFoldColumn) {
        out += ' ';
        out += p.text;
        col += 1 + p.text.size();
      } else if (p.inner) {
        out += eol;
        out += ' ';
        out += p.text;
        col = 1 + p.text.size();
      } else {
        out += eol;
        out += "\t  ";
        out += p.text;
        col = kTabWidth + 2 + p.text.size();
      }
    }
    if (!last_resinfo) out += ';';
  }
  return out;
}

std::optional<Parsed> parse(std::string_view value) {
  value = strip_final_crlf(value);
  if (value.size() > kMaxFieldValue) return std::nullopt;
  Reader r(value);
  Parsed parsed;
  auto id = read_authserv_id(r);
  if (!id) return std::nullopt;
  parsed.authserv_id = std::move(*id);

  bool separated = false;
  if (!r.cfws(separated)) return std::nullopt;
  if (separated && is_digit(r.peek())) {  // authres-version
    r.digits();
    if (!r.cfws()) return std::nullopt;
  }
  if (!r.take(';')) return std::nullopt;  // no-result or at least one resinfo is required
  if (!r.cfws()) return std::nullopt;

  // no-result: ";" "none", alone.
  const auto mark = r.pos();
  if (auto k = r.keyword(); k && *k == "none") {
    if (!r.cfws()) return std::nullopt;
    if (r.at_end()) return parsed;
  }
  r.seek(mark);

  while (true) {
    auto m = read_resinfo(r);
    if (!m) return std::nullopt;
    if (parsed.results.size() >= kMaxResults) return std::nullopt;
    parsed.results.push_back(std::move(*m));
    if (r.at_end()) return parsed;
    if (!r.take(';') || !r.cfws()) return std::nullopt;
  }
}

std::optional<std::string> authserv_id(std::string_view value) {
  if (value.size() > kMaxFieldValue) return std::nullopt;
  Reader r(value);
  return read_authserv_id(r);
}

bool claims_authserv_id(std::string_view value, std::string_view ours) {
  const auto id = authserv_id(value);
  return id && same_authserv_id(*id, ours);
}

}  // namespace chainmail::authres
