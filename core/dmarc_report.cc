// dmarc_report.cc - see dmarc_report.h. libxml2's xmlTextReader, a path of element names, and one handler per
// leaf; the schema rules are checked once the document has been read.
#include "core/dmarc_report.h"

#include <libxml/parser.h>
#include <libxml/xmlreader.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <initializer_list>
#include <memory>
#include <mutex>

#include "core/network.h"

namespace chainmail {
namespace {

constexpr std::string_view kRfc9990Namespace = "urn:ietf:params:xml:ns:dmarc-2.0";

struct FreeReader {
  void operator()(xmlTextReader* r) const { xmlFreeTextReader(r); }
};
using Reader = std::unique_ptr<xmlTextReader, FreeReader>;

// No external entity, DTD or schema is ever loaded by chainmail, whatever the parser options say.
xmlParserInputPtr refuse_external_entity(const char* /*url*/, const char* /*id*/,
                                         xmlParserCtxtPtr /*ctxt*/) noexcept {
  return nullptr;
}

void init_libxml() {
  static std::once_flag once;
  std::call_once(once, [] {
    xmlInitParser();
    xmlSetExternalEntityLoader(refuse_external_entity);
  });
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

std::string_view as_view(const xmlChar* s) {
  return s == nullptr ? std::string_view{} : std::string_view(reinterpret_cast<const char*>(s));
}

// Skips a UTF-8 byte order mark, white space, the XML declaration, processing instructions and comments.
// Returns the offset of the first other markup ('<'), or npos when the prolog does not end.
std::size_t skip_prolog(std::string_view d) {
  std::size_t i = d.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
  while (i < d.size()) {
    const char ch = d[i];
    if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
      ++i;
    } else if (d.compare(i, 2, "<?") == 0) {
      const auto end = d.find("?>", i + 2);
      if (end == std::string_view::npos) return std::string_view::npos;
      i = end + 2;
    } else if (d.compare(i, 4, "<!--") == 0) {
      const auto end = d.find("-->", i + 4);
      if (end == std::string_view::npos) return std::string_view::npos;
      i = end + 3;
    } else {
      return i;
    }
  }
  return std::string_view::npos;
}

template <typename Int>
bool parse_int(std::string_view s, Int& out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

bool one_of(std::string_view v, std::initializer_list<std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}

class Parser {
 public:
  explicit Parser(const ReportParseLimits& limits) : limits_(limits) {}

  ReportParseResult run(std::string_view xml) {
    if (xml.size() > static_cast<std::size_t>(INT_MAX)) return fail("document too large");
    if (xml.find('\0') != std::string_view::npos) return fail("NUL byte in document (not UTF-8 XML)");
    const auto markup = skip_prolog(xml);
    if (markup == std::string_view::npos) return fail("no root element");
    if (xml.compare(markup, 2, "<!") == 0) return fail("document type declaration (DOCTYPE) refused");

    init_libxml();
    // Not set, on purpose: XML_PARSE_NOENT (substitute entities), XML_PARSE_DTDLOAD, XML_PARSE_DTDATTR,
    // XML_PARSE_DTDVALID, XML_PARSE_XINCLUDE, XML_PARSE_HUGE.
    const int options = XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOCDATA | XML_PARSE_NOXINCNODE;
    Reader reader(
        xmlReaderForMemory(xml.data(), static_cast<int>(xml.size()), "report.xml", nullptr, options));
    if (!reader) return fail("cannot create the XML reader");
    xmlTextReaderSetErrorHandler(reader.get(), &Parser::on_error, this);

    int rc = 0;
    while ((rc = xmlTextReaderRead(reader.get())) == 1) {
      if (!step(reader.get()) || !error_.empty()) break;
    }
    if (error_.empty() && rc < 0) error_ = "not well-formed XML";
    if (!error_.empty()) return fail(error_);
    if (!seen_root_) return fail("no <feedback> element");
    if (auto why = check(); !why.empty()) return fail(why);
    return {std::move(report_), {}};
  }

 private:
  static void on_error(void* arg, const char* msg, xmlParserSeverities severity,
                       xmlTextReaderLocatorPtr locator) noexcept {
    auto* self = static_cast<Parser*>(arg);
    if (severity != XML_PARSER_SEVERITY_ERROR && severity != XML_PARSER_SEVERITY_VALIDITY_ERROR) return;
    if (!self->error_.empty()) return;
    try {
      std::string m(trim(msg == nullptr ? std::string_view("XML error") : std::string_view(msg)));
      const int line = locator != nullptr ? xmlTextReaderLocatorLineNumber(locator) : 0;
      self->error_ = "line " + std::to_string(line) + ": " + m;
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the fallback below still marks the error
      self->error_.clear();
    }
    if (self->error_.empty()) self->error_ = "XML error";
  }

  bool step(xmlTextReader* r) {
    switch (xmlTextReaderNodeType(r)) {
      case XML_READER_TYPE_DOCUMENT_TYPE:
        error_ = "document type declaration (DOCTYPE) refused";
        return false;
      case XML_READER_TYPE_ENTITY_REFERENCE:
      case XML_READER_TYPE_ENTITY:
        error_ = "entity reference refused";
        return false;
      case XML_READER_TYPE_ELEMENT:
        return start(r);
      case XML_READER_TYPE_TEXT:
      case XML_READER_TYPE_CDATA:
      case XML_READER_TYPE_SIGNIFICANT_WHITESPACE: {
        const auto value = as_view(xmlTextReaderConstValue(r));
        if (text_.size() + value.size() > limits_.max_text) {
          error_ = "element text longer than " + std::to_string(limits_.max_text);
          return false;
        }
        text_ += value;
        return true;
      }
      case XML_READER_TYPE_END_ELEMENT:
        return finish();
      default:
        return true;
    }
  }

  bool start(xmlTextReader* r) {
    const int depth = xmlTextReaderDepth(r);
    if (depth < 0 || static_cast<std::size_t>(depth) + 1 > limits_.max_depth) {
      error_ = "elements nested deeper than " + std::to_string(limits_.max_depth);
      return false;
    }
    const auto name = as_view(xmlTextReaderConstLocalName(r));
    const auto ns = as_view(xmlTextReaderConstNamespaceUri(r));
    if (path_.empty()) {
      if (seen_root_ || name != "feedback") {
        error_ = "the root element is not <feedback>";
        return false;
      }
      if (ns == kRfc9990Namespace) {
        report_.schema = ReportSchema::Rfc9990;
      } else if (!ns.empty()) {
        error_ = "unknown namespace on <feedback>";
        return false;
      }
      seen_root_ = true;
      root_ns_ = ns;
    }
    // An element from another namespace (an extension) is kept in the path under a name no handler matches.
    path_.emplace_back(ns == root_ns_ ? name : std::string_view("#foreign"));
    key_ = joined();
    text_.clear();
    if (!opened()) return false;
    if (xmlTextReaderIsEmptyElement(r) != 0) return finish();
    return true;
  }

  bool finish() {
    if (path_.empty()) return true;
    key_ = joined();
    const bool ok = closed(trim(text_));
    text_.clear();
    path_.pop_back();
    return ok;
  }

  // The element path below <feedback>, e.g. "record/row/source_ip".
  std::string joined() const {
    std::string out;
    for (std::size_t i = 1; i < path_.size(); ++i) {
      if (i > 1) out += '/';
      out += path_[i];
    }
    return out;
  }

  bool opened() {
    if (key_ == "record") {
      if (report_.records.size() >= limits_.max_records) {
        error_ = "more than " + std::to_string(limits_.max_records) + " records";
        return false;
      }
      report_.records.emplace_back();
      seen_count_ = false;
    } else if (key_ == "record/auth_results/dkim" && !report_.records.empty()) {
      report_.records.back().dkim_results.emplace_back();
    } else if (key_ == "record/auth_results/spf" && !report_.records.empty()) {
      report_.records.back().spf_results.emplace_back();
    }
    return true;
  }

  bool closed(std::string_view v) {
    auto& m = report_.metadata;
    auto& p = report_.policy;
    if (key_ == "version") {
      report_.version = v;
      if (report_.schema == ReportSchema::Rfc7489 && v == "2.0") report_.schema = ReportSchema::Rfc9990;
    } else if (key_ == "report_metadata/org_name") {
      m.org_name = v;
      seen_org_ = true;
    } else if (key_ == "report_metadata/email") {
      m.email = v;
    } else if (key_ == "report_metadata/extra_contact_info") {
      m.extra_contact_info = v;
    } else if (key_ == "report_metadata/report_id") {
      m.report_id = v;
    } else if (key_ == "report_metadata/error") {
      m.errors.emplace_back(v);
    } else if (key_ == "report_metadata/date_range/begin") {
      if (!parse_int(v, m.begin)) return bad("date_range/begin is not a number");
      seen_begin_ = true;
    } else if (key_ == "report_metadata/date_range/end") {
      if (!parse_int(v, m.end)) return bad("date_range/end is not a number");
      seen_end_ = true;
    } else if (key_.rfind("policy_published/", 0) == 0) {
      return policy(key_.substr(17), v, p);
    } else if (key_.rfind("record/", 0) == 0 && !report_.records.empty()) {
      return record(key_.substr(7), v, report_.records.back());
    }
    return true;
  }

  bool policy(std::string_view name, std::string_view v, DmarcPolicyPublished& p) {
    if (name == "domain") {
      p.domain = v;
    } else if (name == "adkim") {
      p.adkim = v;
    } else if (name == "aspf") {
      p.aspf = v;
    } else if (name == "p") {
      p.p = v;
    } else if (name == "sp") {
      p.sp = v;
    } else if (name == "np") {
      p.np = v;
    } else if (name == "fo") {
      p.fo = v;
    } else if (name == "testing") {
      p.testing = v;
    } else if (name == "discovery_method") {
      p.discovery_method = v;
    } else if (name == "pct") {
      int pct = 0;
      if (!parse_int(v, pct) || pct < 0 || pct > 100) return bad("policy_published/pct is not 0..100");
      p.pct = pct;
    }
    return true;
  }

  bool record(std::string_view name, std::string_view v, DmarcRecord& r) {
    if (name == "row/source_ip") {
      r.source_ip = v;
    } else if (name == "row/count") {
      if (!parse_int(v, r.count)) return bad("row/count is not a number");
      seen_count_ = true;
    } else if (name == "row/policy_evaluated/disposition") {
      r.disposition = v;
    } else if (name == "row/policy_evaluated/dkim") {
      r.dkim = v;
    } else if (name == "row/policy_evaluated/spf") {
      r.spf = v;
    } else if (name == "row/policy_evaluated/reason/type") {
      if (!v.empty()) r.reasons.emplace_back(v);
    } else if (name == "identifiers/header_from") {
      r.header_from = v;
    } else if (name == "identifiers/envelope_from") {
      r.envelope_from = v;
    } else if (name == "identifiers/envelope_to") {
      r.envelope_to = v;
    } else if (name.rfind("auth_results/dkim/", 0) == 0 && !r.dkim_results.empty()) {
      auth(name.substr(18), v, r.dkim_results.back());
    } else if (name.rfind("auth_results/spf/", 0) == 0 && !r.spf_results.empty()) {
      auth(name.substr(17), v, r.spf_results.back());
    } else if (name == "row" && !seen_count_) {
      return bad("a record has no count");
    }
    return true;
  }

  static void auth(std::string_view name, std::string_view v, DmarcAuthResult& a) {
    if (name == "domain") {
      a.domain = v;
    } else if (name == "selector") {
      a.selector = v;
    } else if (name == "scope") {
      a.scope = v;
    } else if (name == "result") {
      a.result = v;
    }
  }

  // The schema rules that make the report usable; the first one broken is the reason.
  std::string check() const {
    const auto& m = report_.metadata;
    const auto& p = report_.policy;
    // Present, but possibly empty: some reporters send <org_name></org_name>, and the schema allows it.
    if (!seen_org_) return "report_metadata/org_name is missing";
    if (m.report_id.empty()) return "report_metadata/report_id is missing";
    if (!seen_begin_ || !seen_end_) return "report_metadata/date_range is missing";
    if (m.begin > m.end) return "report_metadata/date_range ends before it begins";
    if (p.domain.empty()) return "policy_published/domain is missing";
    if (!one_of(p.p, {"none", "quarantine", "reject"}))
      return "policy_published/p is not none|quarantine|reject";
    if (!p.sp.empty() && !one_of(p.sp, {"none", "quarantine", "reject"}))
      return "policy_published/sp is not none|quarantine|reject";
    if (!p.adkim.empty() && !one_of(p.adkim, {"r", "s"})) return "policy_published/adkim is not r|s";
    if (!p.aspf.empty() && !one_of(p.aspf, {"r", "s"})) return "policy_published/aspf is not r|s";
    for (std::size_t i = 0; i < report_.records.size(); ++i) {
      const auto& r = report_.records[i];
      const std::string at = "record " + std::to_string(i + 1) + ": ";
      if (!parse_ip(r.source_ip)) return at + "source_ip is not an IP address";
      if (!one_of(r.disposition, {"none", "quarantine", "reject", "pass"}))
        return at + "disposition is not none|quarantine|reject|pass";
      if (!one_of(r.dkim, {"pass", "fail"})) return at + "policy_evaluated/dkim is not pass|fail";
      if (!one_of(r.spf, {"pass", "fail"})) return at + "policy_evaluated/spf is not pass|fail";
      if (r.header_from.empty()) return at + "identifiers/header_from is missing";
      for (const auto& a : r.dkim_results) {
        if (!one_of(a.result, {"none", "pass", "fail", "policy", "neutral", "temperror", "permerror"}))
          return at + "auth_results/dkim/result is not a DKIM result";
      }
      for (const auto& a : r.spf_results) {
        if (!one_of(a.result, {"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"}))
          return at + "auth_results/spf/result is not an SPF result";
      }
    }
    return {};
  }

  bool bad(std::string why) {
    error_ = std::move(why);
    return false;
  }

  static ReportParseResult fail(std::string why) { return {std::nullopt, std::move(why)}; }

  const ReportParseLimits& limits_;
  AggregateReport report_;
  std::vector<std::string> path_;
  std::string key_;
  std::string text_;
  std::string error_;
  std::string root_ns_;
  bool seen_root_ = false;
  bool seen_org_ = false;
  bool seen_begin_ = false;
  bool seen_end_ = false;
  bool seen_count_ = false;
};

}  // namespace

std::uint64_t AggregateReport::message_count() const {
  std::uint64_t n = 0;
  for (const auto& r : records) n += r.count;
  return n;
}

ReportParseResult parse_aggregate_report(std::string_view xml, const ReportParseLimits& limits) noexcept {
  try {
    return Parser(limits).run(xml);
  } catch (const std::exception& e) {
    try {
      return {std::nullopt, std::string("parser failure: ") + e.what()};
    } catch (...) {
      return {std::nullopt, "parser failure"};
    }
  } catch (...) {
    return {std::nullopt, "parser failure"};
  }
}

bool looks_like_aggregate_report(std::string_view data) {
  const auto start = skip_prolog(data.substr(0, std::size_t{64} * 1024));
  if (start == std::string_view::npos) return false;
  // A DOCTYPE before the root still makes it a report candidate: it is then filed as Invalid, not as mail.
  const auto window = data.substr(start, std::size_t{64} * 1024);
  if (window.rfind("<!DOCTYPE", 0) == 0) return window.find("feedback") != std::string_view::npos;
  return window.rfind("<feedback", 0) == 0 && window.size() > 9 &&
         (window[9] == '>' || window[9] == ' ' || window[9] == '\t' || window[9] == '\r' ||
          window[9] == '\n' || window[9] == '/');
}

}  // namespace chainmail
