// dmarc_report.cc - see dmarc_report.h. libxml2's SAX2 parser, each open element's place in the schema's tree
// (dmarc_report_fields.h), and one handler per leaf; each record's schema rules are checked as it closes, the
// report's once the document has been read. A large document can be read as two halves at once
// (split_parse()), with the serial parse as referee.
#include "core/dmarc_report.h"

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <climits>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>

#include "core/dmarc_report_fields.h"
#include "core/network.h"

namespace chainmail {
namespace {

constexpr std::string_view kRfc9990Namespace = "urn:ietf:params:xml:ns:dmarc-2.0";

struct FreeParserCtxt {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};
using ParserCtxt = std::unique_ptr<xmlParserCtxt, FreeParserCtxt>;

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

// The fewest bytes a record this parser accepts can take: <record>, a <row> with source_ip ("::1"), count and
// policy_evaluated (disposition, dkim, spf), and <identifiers> with a one-letter header_from, without white
// space, is 225 bytes. So a document of n bytes holds at most n / 200 records, and reserving that many up
// front means the vector never reallocates: each reallocation moved every record so far into fresh pages,
// and merging the halves of a split parse moved them all once more (0.7 ms of a 1 MB report's parse).
// Memory reserved and never written is address space only: the kernel gives it pages on first touch.
constexpr std::size_t kMinRecordBytes = 200;

// Best effort: when even the address space is short (a ulimit -v), the vector grows as records come.
void reserve_records(std::vector<DmarcRecord>& records, std::size_t document_bytes,
                     const ReportParseLimits& limits) noexcept {
  try {
    records.reserve(std::min(limits.max_records, document_bytes / kMinRecordBytes + 1));
  } catch (...) {  // NOLINT(bugprone-empty-catch): see above
  }
}

bool xml_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// A loop, not find_first_not_of: that calls memchr once per character, and trim runs once per element.
std::string_view trim(std::string_view s) {
  std::size_t first = 0;
  std::size_t last = s.size();
  while (first < last && xml_space(s[first])) ++first;
  while (last > first && xml_space(s[last - 1])) --last;
  return s.substr(first, last - first);
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

bool dkim_result_ok(std::string_view v) {
  return one_of(v, {"none", "pass", "fail", "policy", "neutral", "temperror", "permerror"});
}
bool spf_result_ok(std::string_view v) {
  return one_of(v, {"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"});
}
constexpr const char* kBadDkimResult = "auth_results/dkim/result is not a DKIM result";
constexpr const char* kBadSpfResult = "auth_results/spf/result is not an SPF result";

// The schema's element tree (Field, child_field(), kHasText) is in dmarc_report_fields.h.
using report_fields::child_field;
using report_fields::Field;
using report_fields::kHasText;

// One piece of what a Parser reads: bytes in memory, or, when `document` is set, the range
// [offset, offset + length) of a document that is read through it (parse_aggregate_report_at()).
struct Piece {
  std::string_view bytes;
  const ReadAt* document = nullptr;
  std::size_t offset = 0;
  std::size_t length = 0;

  bool empty() const { return document == nullptr ? bytes.empty() : length == 0; }
};
// A whole document is one piece; a half of a split one is up to three (see split_parse()).
using Pieces = std::array<Piece, 3>;

// The document, handed to libxml2 piece by piece (an xmlInputReadCallback): the pieces in turn, so that a
// half of a split document is read from the caller's buffer, or straight from the caller's file, without
// being copied together first.
struct PieceSource {
  Pieces pieces;
  std::size_t at = 0;
  // Set when a piece could not be read, or held a NUL byte (refused_unread() looks for those in a document
  // in memory before it is parsed; a document read piece by piece is looked at as it comes). The parse
  // then fails whatever libxml2 makes of the shortened input.
  const char* failed = nullptr;

  static int read(void* context, char* buffer, int len) noexcept {
    auto* self = static_cast<PieceSource*>(context);
    if (len <= 0 || self->failed != nullptr) return 0;
    while (self->at < self->pieces.size() && self->pieces[self->at].empty()) ++self->at;
    if (self->at == self->pieces.size()) return 0;
    auto& rest = self->pieces[self->at];
    if (rest.document == nullptr) {
      const std::size_t n = std::min(rest.bytes.size(), static_cast<std::size_t>(len));
      std::copy_n(rest.bytes.data(), n, buffer);
      rest.bytes.remove_prefix(n);
      return static_cast<int>(n);
    }
    // Straight into libxml2's own buffer, which it reuses: no copy of the document is ever made whole.
    const std::size_t n = std::min(rest.length, static_cast<std::size_t>(len));
    bool read = false;
    try {
      read = (*rest.document)(rest.offset, {buffer, n});
    } catch (...) {  // NOLINT(bugprone-empty-catch): `read` stays false
    }
    if (!read) return self->fail("the document could not be read");
    if (std::memchr(buffer, 0, n) != nullptr) return self->fail("NUL byte in document (not UTF-8 XML)");
    rest.offset += n;
    rest.length -= n;
    return static_cast<int>(n);
  }

  int fail(const char* why) {
    failed = why;
    return -1;
  }
};

// What a Parser reads. A whole document is the serial parse. The head and tail of a split document (see
// split_parse()) are read as the serial parse reads those parts, except that the tail accepts nothing but
// <record> directly under <feedback> (a report_metadata, policy_published or version after the cut would be
// lost with the tail's report), and each half stops as soon as the other has failed.
enum class Part { whole, head, tail };

class Parser {
 public:
  explicit Parser(const ReportParseLimits& limits, Part part = Part::whole,
                  std::atomic<bool>* abandoned = nullptr, RecordTally* tally = nullptr)
      : limits_(limits), part_(part), abandoned_(abandoned), tally_(tally) {}

  // The serial parse: the whole document, then the schema rules.
  ReportParseResult run(std::string_view xml) {
    if (auto why = refused_unread(xml); !why.empty()) return fail(std::move(why));
    if (tally_ == nullptr) reserve_records(report_.records, xml.size(), limits_);
    if (!read({Piece{xml}})) return fail(error_);
    return result();
  }

  // Why a document is refused before libxml2 sees it, or "".
  static std::string refused_unread(std::string_view xml) {
    if (xml.size() > static_cast<std::size_t>(INT_MAX)) return "document too large";
    if (xml.find('\0') != std::string_view::npos) return "NUL byte in document (not UTF-8 XML)";
    const auto markup = skip_prolog(xml);
    if (markup == std::string_view::npos) return "no root element";
    if (xml.compare(markup, 2, "<!") == 0) return "document type declaration (DOCTYPE) refused";
    return {};
  }

  // Reads the document made of the pieces (in turn) with libxml2: true when it is well-formed and broke no
  // rule or limit on the way, else error() says why. Never throws.
  bool read(const Pieces& pieces) noexcept {
    try {
      read_pieces(pieces);
    } catch (...) {
      if (error_.empty()) error_ = "parser failure";
    }
    ctxt_ = nullptr;
    if (!error_.empty() && abandoned_ != nullptr) abandoned_->store(true, std::memory_order_relaxed);
    return error_.empty();
  }

  const std::string& error() const { return error_; }

  // The records read so far (the tail's are moved into the head's), and how many were read, kept or not.
  std::vector<DmarcRecord>& records() { return report_.records; }
  std::size_t records_read() const { return records_read_; }

  // For a half of a split document, after a successful read(): whether every record it read follows the
  // schema (each was checked as it closed, on the half's own thread). When one does not, the serial parse
  // decides (and names the record).
  bool records_follow_schema() const { return !first_bad_record_; }

  // After a successful read(): the report, or the first schema rule it breaks.
  ReportParseResult result() {
    if (!seen_root_) return fail("no <feedback> element");
    if (auto why = check(); !why.empty()) return fail(std::move(why));
    if (tally_ != nullptr) report_.records.clear();  // the last one read, handed over already
    return {std::move(report_), {}};
  }

 private:
  void read_pieces(const Pieces& pieces) {
    init_libxml();
    // SAX2, not xmlTextReader: the reader builds and frees a tree node for every element and text, which
    // was half the time on large reports; these callbacks see the same events without any tree.
    // Fed through a read callback, not xmlCreateMemoryParserCtxt(): that copies the whole document into a
    // buffer of libxml2's first (1 MB of fresh pages, faulted in one by one, for a 1 MB report); this way
    // libxml2 reads it in small pieces into a buffer it reuses. Parsing itself is the same pull parser.
    PieceSource source{pieces};
    ParserCtxt ctxt(xmlCreateIOParserCtxt(nullptr, nullptr, &PieceSource::read, nullptr, &source,
                                          XML_CHAR_ENCODING_NONE));
    if (!ctxt || ctxt->sax == nullptr) {
      error_ = "cannot create the XML parser";
      return;
    }
    xmlSAXHandler sax{};
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = &Parser::on_start;
    sax.endElementNs = &Parser::on_end;
    sax.characters = &Parser::on_text;
    sax.cdataBlock = &Parser::on_text;
    sax.internalSubset = &Parser::on_subset;
    sax.externalSubset = &Parser::on_subset;
    sax.entityDecl = &Parser::on_entity_decl;
    sax.reference = &Parser::on_reference;
    sax.getEntity = &Parser::on_get_entity;
    sax.serror = &Parser::on_error;
    *ctxt->sax = sax;
    ctxt->userData = this;
    ctxt_ = ctxt.get();
    // Not set, on purpose: XML_PARSE_NOENT (substitute entities), XML_PARSE_DTDLOAD, XML_PARSE_DTDATTR,
    // XML_PARSE_DTDVALID, XML_PARSE_XINCLUDE, XML_PARSE_HUGE. NOCDATA delivers CDATA as text.
    xmlCtxtUseOptions(ctxt.get(), XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOCDATA);

    const int rc = xmlParseDocument(ctxt.get());
    ctxt_ = nullptr;
    if (source.failed != nullptr) error_ = source.failed;
    if (error_.empty() && (rc != 0 || ctxt->wellFormed == 0)) error_ = "not well-formed XML";
  }

 private:
  // The SAX callbacks: libxml2 hands them ctxt->userData, this Parser. They must not throw into libxml2;
  // an exception (out of memory) becomes the parse error, and stop() ends the parse at the first error.
  template <typename F>
  static void guarded(void* arg, F&& f) noexcept {
    auto* self = static_cast<Parser*>(arg);
    if (!self->error_.empty()) return;
    if (self->abandoned_ != nullptr && self->abandoned_->load(std::memory_order_relaxed)) {
      self->error_ = "the other half failed";
      self->stop();
      return;
    }
    try {
      if (!f(*self)) self->stop();
    } catch (...) {
      self->error_ = "parser failure";
      self->stop();
    }
    if (!self->error_.empty()) self->stop();
  }

  void stop() {
    if (error_.empty()) error_ = "parser failure";
    if (ctxt_ != nullptr) xmlStopParser(ctxt_);
  }

  static void on_start(void* arg, const xmlChar* localname, const xmlChar* /*prefix*/, const xmlChar* uri,
                       int /*nb_namespaces*/, const xmlChar** /*namespaces*/, int /*nb_attributes*/,
                       int /*nb_defaulted*/, const xmlChar** /*attributes*/) noexcept {
    guarded(arg, [&](Parser& p) { return p.start(as_view(localname), as_view(uri)); });
  }

  static void on_end(void* arg, const xmlChar* /*localname*/, const xmlChar* /*prefix*/,
                     const xmlChar* /*uri*/) noexcept {
    guarded(arg, [](Parser& p) { return p.finish(); });
  }

  static void on_text(void* arg, const xmlChar* text, int len) noexcept {
    guarded(arg, [&](Parser& p) {
      return p.characters(
          std::string_view(reinterpret_cast<const char*>(text), static_cast<std::size_t>(len)));
    });
  }

  static void on_subset(void* arg, const xmlChar* /*name*/, const xmlChar* /*external_id*/,
                        const xmlChar* /*system_id*/) noexcept {
    guarded(arg, [](Parser& p) { return p.bad("document type declaration (DOCTYPE) refused"); });
  }

  static void on_entity_decl(void* arg, const xmlChar* /*name*/, int /*type*/, const xmlChar* /*public_id*/,
                             const xmlChar* /*system_id*/, xmlChar* /*content*/) noexcept {
    guarded(arg, [](Parser& p) { return p.bad("entity declaration refused"); });
  }

  static void on_reference(void* arg, const xmlChar* /*name*/) noexcept {
    guarded(arg, [](Parser& p) { return p.bad("entity reference refused"); });
  }

  // No entity is ever known: an undeclared reference is a well-formedness error (the five predefined ones,
  // &amp; and the like, are resolved by libxml2 itself without asking).
  static xmlEntityPtr on_get_entity(void* arg, const xmlChar* /*name*/) noexcept {
    guarded(arg, [](Parser& p) { return p.bad("entity reference refused"); });
    return nullptr;
  }

  static void on_error(void* arg, xmlErrorPtr err) noexcept {
    auto* self = static_cast<Parser*>(arg);
    if (err == nullptr || err->level < XML_ERR_ERROR || !self->error_.empty()) return;
    try {
      std::string m(
          trim(err->message == nullptr ? std::string_view("XML error") : std::string_view(err->message)));
      // Built piecewise: GCC 12 warns (-Wrestrict, falsely) on "literal" + std::to_string(...).
      self->error_ = "line ";
      self->error_ += std::to_string(err->line);
      self->error_ += ": ";
      self->error_ += m;
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the fallback below still marks the error
      self->error_.clear();
    }
    if (self->error_.empty()) self->error_ = "XML error";
    self->stop();
  }

  bool characters(std::string_view value) {
    if (text_length_ + value.size() > limits_.max_text) {
      return bad("element text longer than " + std::to_string(limits_.max_text));
    }
    text_length_ += value.size();
    if (!fields_.empty() && kHasText[static_cast<std::size_t>(fields_.back())]) text_ += value;
    return true;
  }

  void clear_text() {
    text_.clear();
    text_length_ = 0;
  }

  bool start(std::string_view name, std::string_view ns) {
    if (depth_ + 1 > limits_.max_depth) {
      return bad("elements nested deeper than " + std::to_string(limits_.max_depth));
    }
    if (depth_ == 0) {
      if (seen_root_ || name != "feedback") return bad("the root element is not <feedback>");
      if (ns == kRfc9990Namespace) {
        report_.schema = ReportSchema::Rfc9990;
      } else if (!ns.empty()) {
        return bad("unknown namespace on <feedback>");
      }
      seen_root_ = true;
      root_ns_ = ns;
    }
    // An element from another namespace (an extension) is Field::other, and so is everything below it.
    Field field = Field::root;
    if (depth_ > 0) field = ns == root_ns_ ? child_field(fields_.back(), name) : Field::other;
    if (part_ == Part::tail && depth_ == 1 && field != Field::record) return bad("not a record in the tail");
    fields_.push_back(field);
    ++depth_;
    clear_text();
    return opened(field);
  }

  bool finish() {
    if (depth_ == 0) return true;
    const bool ok = closed(fields_.back(), trim(text_));
    clear_text();
    --depth_;
    fields_.pop_back();
    return ok;
  }

  bool opened(Field f) {
    switch (f) {
      case Field::record:
        if (records_read_ >= limits_.max_records) {
          return bad("more than " + std::to_string(limits_.max_records) + " records");
        }
        ++records_read_;
        // Counted, not kept: the one record being read, in the same place each time.
        if (tally_ != nullptr) report_.records.clear();
        report_.records.emplace_back();
        seen_count_ = false;
        dkim_result_broken_ = false;
        spf_result_broken_ = false;
        break;
      case Field::record_dkim:
        if (!report_.records.empty()) open_auth(report_.records.back().dkim_results);
        break;
      case Field::record_spf:
        if (!report_.records.empty()) open_auth(report_.records.back().spf_results);
        break;
      default:
        break;
    }
    return true;
  }

  bool closed(Field f, std::string_view v) {
    auto& m = report_.metadata;
    auto& p = report_.policy;
    switch (f) {
      case Field::version:
        report_.version = v;
        if (report_.schema == ReportSchema::Rfc7489 && v == "2.0") report_.schema = ReportSchema::Rfc9990;
        return true;
      case Field::org_name:
        m.org_name = v;
        seen_org_ = true;
        return true;
      case Field::email:
        m.email = v;
        return true;
      case Field::extra_contact_info:
        m.extra_contact_info = v;
        return true;
      case Field::report_id:
        m.report_id = v;
        return true;
      case Field::error:
        m.errors.emplace_back(v);
        return true;
      case Field::begin:
        if (!parse_int(v, m.begin)) return bad("date_range/begin is not a number");
        seen_begin_ = true;
        return true;
      case Field::end:
        if (!parse_int(v, m.end)) return bad("date_range/end is not a number");
        seen_end_ = true;
        return true;
      case Field::domain:
        p.domain = v;
        return true;
      case Field::adkim:
        p.adkim = v;
        return true;
      case Field::aspf:
        p.aspf = v;
        return true;
      case Field::p:
        p.p = v;
        return true;
      case Field::sp:
        p.sp = v;
        return true;
      case Field::np:
        p.np = v;
        return true;
      case Field::fo:
        p.fo = v;
        return true;
      case Field::testing:
        p.testing = v;
        return true;
      case Field::discovery_method:
        p.discovery_method = v;
        return true;
      case Field::pct: {
        int pct = 0;
        if (!parse_int(v, pct) || pct < 0 || pct > 100) return bad("policy_published/pct is not 0..100");
        p.pct = pct;
        return true;
      }
      default:
        break;
    }
    if (report_.records.empty()) return true;
    auto& r = report_.records.back();
    switch (f) {
      case Field::source_ip:
        r.source_ip = v;
        break;
      case Field::count:
        if (!parse_int(v, r.count)) return bad("row/count is not a number");
        seen_count_ = true;
        break;
      case Field::disposition:
        r.disposition = v;
        break;
      case Field::eval_dkim:
        r.dkim = v;
        break;
      case Field::eval_spf:
        r.spf = v;
        break;
      case Field::reason_type:
        if (!v.empty() && limits_.keep_record_details) r.reasons.emplace_back(v);
        break;
      case Field::header_from:
        r.header_from = v;
        break;
      case Field::envelope_from:
        if (limits_.keep_record_details) r.envelope_from = v;
        break;
      case Field::envelope_to:
        if (limits_.keep_record_details) r.envelope_to = v;
        break;
      case Field::row:
        if (!seen_count_) return bad("a record has no count");
        break;
      case Field::dkim_domain:
      case Field::dkim_selector:
      case Field::dkim_result:
        auth_field(f, v, r.dkim_results);
        break;
      case Field::spf_domain:
      case Field::spf_scope:
      case Field::spf_result:
        auth_field(f, v, r.spf_results);
        break;
      // Without the details, each auth result is checked as it closes, and only a broken one is remembered.
      case Field::record_dkim:
        if (!limits_.keep_record_details && !dkim_result_ok(auth_result_)) dkim_result_broken_ = true;
        break;
      case Field::record_spf:
        if (!limits_.keep_record_details && !spf_result_ok(auth_result_)) spf_result_broken_ = true;
        break;
      case Field::record:
        record_closed(r);
        break;
      default:
        break;
    }
    return true;
  }

  // A record has closed: it is checked now, its auth results after its other fields and DKIM's before SPF's
  // (kept, check() reads them; else they were checked as they closed). Only the first record that breaks a
  // rule is remembered: the one check() names, once the report-level rules hold. With a tally, a record that
  // follows the rules is handed over.
  void record_closed(DmarcRecord& r) {
    const char* why = check(r);
    if (why == nullptr && dkim_result_broken_) why = kBadDkimResult;
    if (why == nullptr && spf_result_broken_) why = kBadSpfResult;
    if (why != nullptr) {
      if (!first_bad_record_) first_bad_record_ = BadRecord{records_read_ - 1, why};
    } else if (tally_ != nullptr) {
      tally_->add(std::move(r));
    }
  }

  // An auth result opens: a new one in the record's list, or, without the details, the one being read.
  void open_auth(std::vector<DmarcAuthResult>& results) {
    if (limits_.keep_record_details) {
      results.emplace_back();
    } else {
      auth_result_.clear();
    }
  }

  // A field of the auth result being read: into the record's last one, or, without the details, only its
  // result (the one field the schema constrains), to be checked when the auth result closes.
  void auth_field(Field f, std::string_view v, std::vector<DmarcAuthResult>& results) {
    if (!limits_.keep_record_details) {
      if (f == Field::dkim_result || f == Field::spf_result) auth_result_ = v;
    } else if (!results.empty()) {
      auth(f, v, results.back());
    }
  }

  static void auth(Field f, std::string_view v, DmarcAuthResult& a) {
    switch (f) {
      case Field::dkim_domain:
      case Field::spf_domain:
        a.domain = v;
        break;
      case Field::dkim_selector:
        a.selector = v;
        break;
      case Field::spf_scope:
        a.scope = v;
        break;
      case Field::dkim_result:
      case Field::spf_result:
        a.result = v;
        break;
      default:
        break;
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
    if (!first_bad_record_) return {};
    std::string at = "record ";
    at += std::to_string(first_bad_record_->index + 1);
    at += ": ";
    at += first_bad_record_->why;
    return at;
  }

  struct BadRecord {
    std::size_t index = 0;  // in reading order
    const char* why = nullptr;
  };

  // The rule one record breaks, or nullptr (no string is built for the records that are fine).
  static const char* check(const DmarcRecord& r) {
    if (!parse_ip(r.source_ip)) return "source_ip is not an IP address";
    if (!one_of(r.disposition, {"none", "quarantine", "reject", "pass"}))
      return "disposition is not none|quarantine|reject|pass";
    if (!one_of(r.dkim, {"pass", "fail"})) return "policy_evaluated/dkim is not pass|fail";
    if (!one_of(r.spf, {"pass", "fail"})) return "policy_evaluated/spf is not pass|fail";
    if (r.header_from.empty()) return "identifiers/header_from is missing";
    for (const auto& a : r.dkim_results) {
      if (!dkim_result_ok(a.result)) return kBadDkimResult;
    }
    for (const auto& a : r.spf_results) {
      if (!spf_result_ok(a.result)) return kBadSpfResult;
    }
    return nullptr;
  }

  bool bad(std::string why) {
    error_ = std::move(why);
    return false;
  }

  static ReportParseResult fail(std::string why) { return {std::nullopt, std::move(why)}; }

  const ReportParseLimits& limits_;
  Part part_;
  std::atomic<bool>* abandoned_;  // set by the half that fails first; null for the serial parse
  RecordTally* tally_;            // where records go instead of report_.records, when set
  std::size_t records_read_ = 0;
  std::optional<BadRecord> first_bad_record_;
  xmlParserCtxt* ctxt_ = nullptr;  // during read() only
  AggregateReport report_;
  std::size_t depth_ = 0;        // open elements, <feedback> included
  std::vector<Field> fields_;    // of the open elements
  std::string text_;             // of the innermost open element, when it has kHasText
  std::size_t text_length_ = 0;  // of the innermost open element, kept or not
  std::string error_;
  std::string root_ns_;
  bool seen_root_ = false;
  bool seen_org_ = false;
  bool seen_begin_ = false;
  bool seen_end_ = false;
  bool seen_count_ = false;
  // Without the record details (ReportParseLimits::keep_record_details): the result of the auth result being
  // read, and whether one of the record's DKIM or SPF results broke the schema.
  std::string auth_result_;
  bool dkim_result_broken_ = false;
  bool spf_result_broken_ = false;
};

// Two cache lines: the adjacent-line prefetcher fetches lines in pairs.
constexpr std::size_t kCacheLine = 128;

constexpr std::string_view kRecordTag = "<record>";
constexpr std::string_view kCloseRoot = "</feedback>";

// True when the XML declaration names no encoding (UTF-8), or one in which every '<' byte is a '<' and no
// state carries from one character to the next. In a stateful encoding (ISO-2022-JP, UTF-7) the bytes of
// "<record>" can be part of other characters, and the tail would be read in the wrong state. Documents in
// UTF-16 or UTF-32 have NUL bytes and are refused before this; EBCDIC ones have no "<feedback" at the start.
bool split_safe_encoding(std::string_view xml) {
  std::size_t i = xml.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
  if (xml.compare(i, 5, "<?xml") != 0 || i + 5 >= xml.size() || !xml_space(xml[i + 5])) return true;
  const auto close = xml.find("?>", i);
  if (close == std::string_view::npos) return false;
  const auto decl = xml.substr(i, close - i);
  auto at = decl.find("encoding");
  if (at == std::string_view::npos) return true;
  at += 8;
  while (at < decl.size() && xml_space(decl[at])) ++at;
  if (at == decl.size() || decl[at] != '=') return false;
  ++at;
  while (at < decl.size() && xml_space(decl[at])) ++at;
  if (at == decl.size() || (decl[at] != '"' && decl[at] != '\'')) return false;
  const auto end = decl.find(decl[at], at + 1);
  if (end == std::string_view::npos) return false;
  std::string name(decl.substr(at + 1, end - at - 1));
  for (auto& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  const auto digits = [](std::string_view d) {
    return !d.empty() && d.size() <= 2 &&
           std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const std::string_view n = name;
  if (n == "utf-8" || n == "us-ascii") return true;
  if (n.rfind("iso-8859-", 0) == 0) return digits(n.substr(9));
  return n.size() == 12 && n.rfind("windows-125", 0) == 0 && digits(n.substr(11));
}

// Where the root start tag ends (its '>'), when the document's root is an unprefixed <feedback> with content.
// Only such a root is cut, so that the tail's records are matched against the same namespace declarations
// as the whole document's.
std::optional<std::size_t> find_root_end(std::string_view xml) {
  const auto root = skip_prolog(xml);
  if (root == std::string_view::npos || xml.compare(root, 9, "<feedback") != 0 || root + 9 >= xml.size())
    return std::nullopt;
  if (const char after = xml[root + 9]; !xml_space(after) && after != '>' && after != '/')
    return std::nullopt;
  // The first '>' outside a quoted attribute value: values may hold '>' (never '<').
  std::size_t end = root + 9;
  for (; end < xml.size(); ++end) {
    const char c = xml[end];
    if (c == '"' || c == '\'') {
      end = xml.find(c, end + 1);
      if (end == std::string_view::npos) return std::nullopt;
    } else if (c == '<') {
      return std::nullopt;
    } else if (c == '>') {
      break;
    }
  }
  if (end >= xml.size() || xml[end - 1] == '/') return std::nullopt;  // not there, or <feedback/>
  return end;
}

// The document cut in two: what each half reads, in turn.
struct Halves {
  Pieces head;
  Pieces tail;
  std::size_t tail_bytes = 0;  // of the document, from the cut on
};

// The speculative split. The head is xml[0, cut) + "</feedback>"; the tail is the prolog and root start tag
// followed by xml[cut, end). Both are read by the serial parser's code with the same options and callbacks,
// so every SECURITY property holds for each. The merged result is the serial one because:
// - The head is well-formed only if, at the cut, the serial parse is in the content of <feedback> itself:
//   "<record>" inside a comment, CDATA section or processing instruction leaves that construct open
//   ("</feedback>" is swallowed by it and the head ends unterminated); inside an element below <feedback>
//   (an extension, another record) "</feedback>" closes the wrong element; inside a tag or an attribute
//   value a '<' is itself an error. A DOCTYPE, where "<record>" could hide in an entity value, is refused
//   before either half is read. Up to the cut, the head sees exactly the serial parse's events.
// - In the content of <feedback>, the serial parse's state is: depth 1, the root's namespace declarations and
//   xml:space, the prolog's encoding. The tail's prolog and root start tag are the document's own bytes, so
//   it is in the same state there, and from the cut on it sees the serial parse's events. (Its own
//   well-formedness matters too: a comment, CDATA or element opened in the head and closed after the cut
//   leaves stray "-->", "]]>" or end tags in the tail.)
// - The Parser's state at the cut that a record depends on is the same in both (the depth, the open fields,
//   the root namespace); what carries over is only the metadata and policy seen (the tail refuses those) and
//   the record count (checked on the sum). Each half checks its own records (by their own contents only);
//   the report-level rules are checked once, on the merged report.
// - Every byte of the document is read by one half or the other (the tail skips only what the head reads),
//   so a NUL byte anywhere, which refused_unread() finds in a document in memory, fails a half when the
//   document is read piece by piece.
// Whatever fails (well-formedness, a limit, a rule, a read, a thread that could not be started) costs a
// serial parse, which then decides alone, with its own messages and line numbers.
std::optional<ReportParseResult> read_halves(const Halves& halves, std::size_t document_bytes,
                                             const ReportParseLimits& limits, const RunBoth& run_both,
                                             RecordTally* tally, ReportSplit& path) {
  init_libxml();  // on this thread, before two threads use libxml2 (xmlInitParser is not thread-safe)
  // Each on cache lines of its own: side by side on this stack, one parser's constantly written members
  // (text, depth) would share lines with the other's constantly read ones.
  struct alignas(kCacheLine) Flag {
    std::atomic<bool> set{false};
  };
  struct alignas(kCacheLine) Half {
    Parser parser;
    bool ok = false;
  };
  Flag abandoned;
  // With a tally, each half counts into one of its own, appended to the caller's only once both were read.
  const std::unique_ptr<RecordTally> head_tally = tally != nullptr ? tally->fresh() : nullptr;
  const std::unique_ptr<RecordTally> tail_tally = tally != nullptr ? tally->fresh() : nullptr;
  Half head{Parser(limits, Part::head, &abandoned.set, head_tally.get())};
  Half tail{Parser(limits, Part::tail, &abandoned.set, tail_tally.get())};
  // The head's vector has room for the whole document's records, so the tail's move in without a copy of
  // the head's.
  if (tally == nullptr) {
    reserve_records(head.parser.records(), document_bytes, limits);
    reserve_records(tail.parser.records(), halves.tail_bytes, limits);
  }
  // Each half checks its own records as it reads them: that work is then done on both threads at once.
  const auto read_half = [&abandoned](Half& half, const Pieces& pieces) {
    half.ok = half.parser.read(pieces) && half.parser.records_follow_schema();
    if (!half.ok) abandoned.set.store(true, std::memory_order_relaxed);
  };
  const std::function<void()> first = [&] { read_half(head, halves.head); };
  const std::function<void()> second = [&] { read_half(tail, halves.tail); };
  path = ReportSplit::fell_back;
  run_both(first, second);
  if (!head.ok || !tail.ok) return std::nullopt;
  const std::size_t read = head.parser.records_read();
  if (tail.parser.records_read() > limits.max_records - std::min(limits.max_records, read))
    return std::nullopt;
  if (tally != nullptr) {
    tally->append(std::move(*head_tally));
    tally->append(std::move(*tail_tally));
  } else {
    auto& records = head.parser.records();
    auto& more = tail.parser.records();
    records.insert(records.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  path = ReportSplit::merged;
  return head.parser.result();
}

// A document in memory is cut before the first "<record>" at or after its middle (else the last one before
// it), behind the root start tag.
std::optional<ReportParseResult> split_parse(std::string_view xml, const ReportParseLimits& limits,
                                             const RunBoth& run_both, RecordTally* tally, ReportSplit& path) {
  if (!Parser::refused_unread(xml).empty() || !split_safe_encoding(xml)) return std::nullopt;
  const auto root_end = find_root_end(xml);
  if (!root_end) return std::nullopt;
  const std::size_t body = *root_end + 1;
  const std::size_t middle = xml.size() / 2;
  auto cut = xml.find(kRecordTag, std::max(body, middle));
  if (cut == std::string_view::npos && middle > body) {
    cut = xml.rfind(kRecordTag, middle);
    if (cut != std::string_view::npos && cut < body) cut = std::string_view::npos;
  }
  if (cut == std::string_view::npos) return std::nullopt;
  const Halves halves{{Piece{xml.substr(0, cut)}, Piece{kCloseRoot}},
                      {Piece{xml.substr(0, body)}, Piece{xml.substr(cut)}},
                      xml.size() - cut};
  return read_halves(halves, xml.size(), limits, run_both, tally, path);
}

// A document read through read_at is cut where one in memory would be, if its start and the window at its
// middle show it (see parse_aggregate_report_at()).
std::optional<ReportParseResult> split_parse_at(std::size_t size, const ReadAt& read_at,
                                                const ReportParseLimits& limits, const RunBoth& run_both,
                                                RecordTally* tally, ReportSplit& path) {
  // The start, checked as a whole document in memory is (its prolog and root start tag must be in it); both
  // halves read these checked bytes, not the document's again.
  const std::size_t start_bytes = std::min(size, kReportStartBytes);
  const auto start = std::make_unique_for_overwrite<char[]>(start_bytes);
  if (!read_at(0, {start.get(), start_bytes})) return std::nullopt;
  const std::string_view head_start(start.get(), start_bytes);
  if (!Parser::refused_unread(head_start).empty() || !split_safe_encoding(head_start)) return std::nullopt;
  const auto root_end = find_root_end(head_start);
  if (!root_end) return std::nullopt;
  const std::size_t body = *root_end + 1;
  // The first "<record>" at or after the middle, as split_parse() cuts; when the window has none, the caller
  // reads the document whole, and split_parse() looks further.
  const std::size_t from = std::max(body, size / 2);
  if (from >= size) return std::nullopt;
  const std::size_t window_bytes = std::min(size - from, kReportMiddleBytes);
  std::size_t cut = std::string_view::npos;
  {
    const auto window = std::make_unique_for_overwrite<char[]>(window_bytes);
    if (!read_at(from, {window.get(), window_bytes})) return std::nullopt;
    cut = std::string_view(window.get(), window_bytes).find(kRecordTag);
    if (cut == std::string_view::npos) return std::nullopt;
    cut += from;
  }
  const std::size_t in_start = std::min(start_bytes, cut);
  const Halves halves{{Piece{head_start.substr(0, in_start)}, Piece{{}, &read_at, in_start, cut - in_start},
                       Piece{kCloseRoot}},
                      {Piece{head_start.substr(0, body)}, Piece{{}, &read_at, cut, size - cut}},
                      size - cut};
  return read_halves(halves, size, limits, run_both, tally, path);
}

}  // namespace

std::uint64_t AggregateReport::message_count() const {
  std::uint64_t n = 0;
  for (const auto& r : records) n += r.count;
  return n;
}

ReportParseResult parse_aggregate_report(std::string_view xml, const ReportParseLimits& limits,
                                         RecordTally* tally) noexcept {
  try {
    return Parser(limits, Part::whole, nullptr, tally).run(xml);
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

ReportParseResult parse_aggregate_report(std::string_view xml, const ReportParseLimits& limits,
                                         const RunBoth& run_both, std::size_t min_split_bytes,
                                         ReportSplit* split, RecordTally* tally) noexcept {
  ReportSplit path = ReportSplit::none;
  if (run_both && xml.size() >= min_split_bytes && xml.size() <= kReportSplitMaxBytes) {
    try {
      if (auto r = split_parse(xml, limits, run_both, tally, path)) {
        if (split != nullptr) *split = path;
        return std::move(*r);
      }
    } catch (...) {
      // Out of memory, or no thread: the serial parse decides, unless the halves' records were already
      // counted into the tally (then out of memory in the last step, and only a failure is left to report).
      if (tally != nullptr && path == ReportSplit::merged) {
        if (split != nullptr) *split = path;
        return {std::nullopt, "parser failure"};
      }
    }
  }
  if (split != nullptr) *split = path == ReportSplit::merged ? ReportSplit::fell_back : path;
  return parse_aggregate_report(xml, limits, tally);
}

std::optional<ReportParseResult> parse_aggregate_report_at(std::size_t size, const ReadAt& read_at,
                                                           const ReportParseLimits& limits,
                                                           const RunBoth& run_both,
                                                           std::size_t min_split_bytes, ReportSplit* split,
                                                           RecordTally* tally) noexcept {
  ReportSplit path = ReportSplit::none;
  std::optional<ReportParseResult> result;
  if (run_both && read_at && size >= min_split_bytes && size <= kReportSplitMaxBytes) {
    try {
      result = split_parse_at(size, read_at, limits, run_both, tally, path);
    } catch (...) {
      // Out of memory, or no thread: the caller's serial parse decides, unless the halves' records were
      // already counted into the tally (as in parse_aggregate_report()).
      result.reset();
      if (tally != nullptr && path == ReportSplit::merged)
        result = ReportParseResult{std::nullopt, "parser failure"};
    }
  }
  if (split != nullptr) *split = path == ReportSplit::merged && !result ? ReportSplit::fell_back : path;
  return result;
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
