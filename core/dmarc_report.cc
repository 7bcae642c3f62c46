// dmarc_report.cc - see dmarc_report.h and dmarc_report_parser.h. libxml2's SAX2 parser, each open element's
// place in the schema's tree (dmarc_report_fields.h), and one handler per leaf; each record's schema rules
// are checked as it closes, the report's once the document has been read. The parse of a large document in
// two halves at once, with the serial parse as referee, is in dmarc_report_split.cc.
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
#include <utility>

#include "core/dmarc_report_fields.h"
#include "core/dmarc_report_parser.h"
#include "core/network.h"

namespace chainmail {
namespace {

// The schema's element tree (Field, child_field(), kHasText) is in dmarc_report_fields.h.
using report_fields::child_field;
using report_fields::kHasText;
using report_parser::Pieces;
using report_parser::xml_space;

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

// The fewest bytes a record this parser accepts can take: <record>, a <row> with source_ip ("::1"), count and
// policy_evaluated (disposition, dkim, spf), and <identifiers> with a one-letter header_from, without white
// space, is 225 bytes. So a document of n bytes holds at most n / 200 records, and reserving that many up
// front means the vector never reallocates: each reallocation moved every record so far into fresh pages,
// and merging the halves of a split parse moved them all once more (0.7 ms of a 1 MB report's parse).
// Memory reserved and never written is address space only: the kernel gives it pages on first touch.
constexpr std::size_t kMinRecordBytes = 200;

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

// The document, handed to libxml2 piece by piece (an xmlInputReadCallback): the pieces in turn, so that a
// half of a split document is read from the caller's buffer, or straight from the caller's file, without
// being copied together first.
struct PieceSource {
  // A piece read through a ReadAt is read in blocks this large: libxml2 asks for 4,000 bytes at a time, and
  // a pread(2) for each of them (250 for a 1 MB report) took 0.6 ms of the 3.7 ms that report's parse took
  // on a VM, where every system call traps to the hypervisor. The block is then handed on as a piece in
  // memory is: one more copy, of bytes still in the cache.
  static constexpr std::size_t kReadBlock = kReportReadBlockBytes;

  explicit PieceSource(const Pieces& document) : pieces(document) {}

  Pieces pieces;
  std::size_t at = 0;
  std::string_view pending;  // what libxml2 has not had yet of the piece in memory, or of the last block
  std::unique_ptr<char[]> block;
  // Set when a piece could not be read, or held a NUL byte (refused_unread() looks for those in a document
  // in memory before it is parsed; a document read piece by piece is looked at as it comes). The parse
  // then fails whatever libxml2 makes of the shortened input.
  const char* failed = nullptr;

  static int read(void* context, char* buffer, int len) noexcept {
    auto* self = static_cast<PieceSource*>(context);
    if (len <= 0 || self->failed != nullptr) return 0;
    if (self->pending.empty() && !self->next()) return self->failed != nullptr ? -1 : 0;
    const std::size_t n = std::min(self->pending.size(), static_cast<std::size_t>(len));
    std::copy_n(self->pending.data(), n, buffer);
    self->pending.remove_prefix(n);
    return static_cast<int>(n);
  }

  // The next bytes into `pending`: the next piece in memory, or the next block of the document; false at
  // the end, or when a block could not be read (then `failed` says why).
  bool next() noexcept {
    while (at < pieces.size() && pieces[at].empty()) ++at;
    if (at == pieces.size()) return false;
    auto& rest = pieces[at];
    if (rest.document == nullptr) {
      pending = std::exchange(rest.bytes, {});
      return true;
    }
    const std::size_t n = std::min(rest.length, kReadBlock);
    bool read = false;
    try {
      if (!block) block = std::make_unique_for_overwrite<char[]>(kReadBlock);
      read = (*rest.document)(rest.offset, {block.get(), n});
    } catch (...) {  // NOLINT(bugprone-empty-catch): `read` stays false
    }
    if (!read) return fail("the document could not be read");
    if (std::memchr(block.get(), 0, n) != nullptr) return fail("NUL byte in document (not UTF-8 XML)");
    rest.offset += n;
    rest.length -= n;
    pending = {block.get(), n};
    return true;
  }

  bool fail(const char* why) {
    failed = why;
    return false;
  }
};

}  // namespace

namespace report_parser {

void init_libxml() {
  static std::once_flag once;
  std::call_once(once, [] {
    xmlInitParser();
    xmlSetExternalEntityLoader(refuse_external_entity);
    // For this thread, and for the threads that use libxml2 later (its error handlers are per thread).
    xmlSetStructuredErrorFunc(nullptr, &Parser::on_unattached_error);
    xmlThrDefSetStructuredErrorFunc(nullptr, &Parser::on_unattached_error);
  });
}

// Best effort: when even the address space is short (a ulimit -v), the vector grows as records come.
void reserve_records(std::vector<DmarcRecord>& records, std::size_t document_bytes,
                     const ReportParseLimits& limits) noexcept {
  try {
    records.reserve(std::min(limits.max_records, document_bytes / kMinRecordBytes + 1));
  } catch (...) {  // NOLINT(bugprone-empty-catch): see above
  }
}

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

ReportParseResult Parser::run(std::string_view xml) {
  if (auto why = refused_unread(xml); !why.empty()) return fail(std::move(why));
  if (tally_ == nullptr) reserve_records(report_.records, xml.size(), limits_);
  if (!read({Piece{xml}})) return fail(error_);
  return result();
}

std::string Parser::refused_unread(std::string_view xml) {
  if (xml.size() > static_cast<std::size_t>(INT_MAX)) return "document too large";
  if (xml.find('\0') != std::string_view::npos) return "NUL byte in document (not UTF-8 XML)";
  const auto markup = skip_prolog(xml);
  if (markup == std::string_view::npos) return "no root element";
  if (xml.compare(markup, 2, "<!") == 0) return "document type declaration (DOCTYPE) refused";
  return {};
}

bool Parser::read(const Pieces& pieces) noexcept {
  reading_ = this;
  try {
    read_pieces(pieces);
  } catch (...) {
    if (error_.empty()) error_ = "parser failure";
  }
  ctxt_ = nullptr;
  reading_ = nullptr;
  if (!error_.empty() && abandoned_ != nullptr) abandoned_->store(true, std::memory_order_relaxed);
  return error_.empty();
}

ReportParseResult Parser::result() {
  if (!seen_root_) return fail("no <feedback> element");
  if (auto why = check(); !why.empty()) return fail(std::move(why));
  if (tally_ != nullptr) report_.records.clear();  // the last one read, handed over already
  return {std::move(report_), {}};
}

void Parser::read_pieces(const Pieces& pieces) {
  init_libxml();
  // SAX2, not xmlTextReader: the reader builds and frees a tree node for every element and text, which
  // was half the time on large reports; these callbacks see the same events without any tree.
  // Fed through a read callback, not xmlCreateMemoryParserCtxt(): that copies the whole document into a
  // buffer of libxml2's first (1 MB of fresh pages, faulted in one by one, for a 1 MB report); this way
  // libxml2 reads it in small pieces into a buffer it reuses. Parsing itself is the same pull parser.
  PieceSource source{pieces};
  ParserCtxt ctxt(
      xmlCreateIOParserCtxt(nullptr, nullptr, &PieceSource::read, nullptr, &source, XML_CHAR_ENCODING_NONE));
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

// The SAX callbacks: libxml2 hands them ctxt->userData, this Parser. They must not throw into libxml2;
// an exception (out of memory) becomes the parse error, and stop() ends the parse at the first error.
template <typename F>
void Parser::guarded(void* arg, F&& f) noexcept {
  auto* self = static_cast<Parser*>(arg);
  if (!self->error_.empty()) {  // an error raised without a parser context (note_error()): stop now
    self->stop();
    return;
  }
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

void Parser::stop() {
  if (error_.empty()) error_ = "parser failure";
  if (ctxt_ != nullptr) xmlStopParser(ctxt_);
}

void Parser::on_start(void* arg, const xmlChar* localname, const xmlChar* /*prefix*/, const xmlChar* uri,
                      int /*nb_namespaces*/, const xmlChar** /*namespaces*/, int /*nb_attributes*/,
                      int /*nb_defaulted*/, const xmlChar** /*attributes*/) noexcept {
  guarded(arg, [&](Parser& p) { return p.start(as_view(localname), as_view(uri)); });
}

void Parser::on_end(void* arg, const xmlChar* /*localname*/, const xmlChar* /*prefix*/,
                    const xmlChar* /*uri*/) noexcept {
  guarded(arg, [](Parser& p) { return p.finish(); });
}

void Parser::on_text(void* arg, const xmlChar* text, int len) noexcept {
  guarded(arg, [&](Parser& p) {
    return p.characters(std::string_view(reinterpret_cast<const char*>(text), static_cast<std::size_t>(len)));
  });
}

void Parser::on_subset(void* arg, const xmlChar* /*name*/, const xmlChar* /*external_id*/,
                       const xmlChar* /*system_id*/) noexcept {
  guarded(arg, [](Parser& p) { return p.bad("document type declaration (DOCTYPE) refused"); });
}

void Parser::on_entity_decl(void* arg, const xmlChar* /*name*/, int /*type*/, const xmlChar* /*public_id*/,
                            const xmlChar* /*system_id*/, xmlChar* /*content*/) noexcept {
  guarded(arg, [](Parser& p) { return p.bad("entity declaration refused"); });
}

void Parser::on_reference(void* arg, const xmlChar* /*name*/) noexcept {
  guarded(arg, [](Parser& p) { return p.bad("entity reference refused"); });
}

// No entity is ever known: an undeclared reference is a well-formedness error (the five predefined ones,
// &amp; and the like, are resolved by libxml2 itself without asking).
xmlEntityPtr Parser::on_get_entity(void* arg, const xmlChar* /*name*/) noexcept {
  guarded(arg, [](Parser& p) { return p.bad("entity reference refused"); });
  return nullptr;
}

thread_local Parser* Parser::reading_ = nullptr;

// libxml2 raises some errors without a parser context (input in a declared encoding that fails to convert:
// "input conversion failed due to input error", then "encoder error"). They reach the thread's structured
// error handler, this one, which gives them to the Parser reading on this thread: the first error is the
// document's fault, and libxml2's default handler would print them on stderr, between chainmail's own lines
// and naming no file. The parser is not stopped here: libxml2 raises them while it switches the input's
// encoding, and stopping it then frees the input under that switch (a crash in xmlSwitchToEncoding()). It
// stops at its next event (guarded(), on_error()).
void Parser::on_unattached_error(void* /*unused*/, xmlErrorPtr err) noexcept {
  if (reading_ != nullptr) reading_->note_error(err);
}

void Parser::on_error(void* arg, xmlErrorPtr err) noexcept {
  auto* self = static_cast<Parser*>(arg);
  self->note_error(err);
  if (!self->error_.empty()) self->stop();
}

void Parser::note_error(xmlErrorPtr err) noexcept {
  if (err == nullptr || err->level < XML_ERR_ERROR || !error_.empty()) return;
  try {
    std::string m(
        trim(err->message == nullptr ? std::string_view("XML error") : std::string_view(err->message)));
    // Built piecewise: GCC 12 warns (-Wrestrict, falsely) on "literal" + std::to_string(...). An error raised
    // without a parser context has no line.
    if (err->line > 0) {
      error_ = "line ";
      error_ += std::to_string(err->line);
      error_ += ": ";
    }
    error_ += m;
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the fallback below still marks the error
    error_.clear();
  }
  if (error_.empty()) error_ = "XML error";
}

bool Parser::characters(std::string_view value) {
  if (text_length_ + value.size() > limits_.max_text) {
    return bad("element text longer than " + std::to_string(limits_.max_text));
  }
  text_length_ += value.size();
  if (!fields_.empty() && kHasText[static_cast<std::size_t>(fields_.back())]) text_ += value;
  return true;
}

void Parser::clear_text() {
  text_.clear();
  text_length_ = 0;
}

bool Parser::start(std::string_view name, std::string_view ns) {
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

bool Parser::finish() {
  if (depth_ == 0) return true;
  const bool ok = closed(fields_.back(), trim(text_));
  clear_text();
  --depth_;
  fields_.pop_back();
  return ok;
}

bool Parser::opened(Field f) {
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

bool Parser::closed(Field f, std::string_view v) {
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
void Parser::record_closed(DmarcRecord& r) {
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
void Parser::open_auth(std::vector<DmarcAuthResult>& results) {
  if (limits_.keep_record_details) {
    results.emplace_back();
  } else {
    auth_result_.clear();
  }
}

// A field of the auth result being read: into the record's last one, or, without the details, only its
// result (the one field the schema constrains), to be checked when the auth result closes.
void Parser::auth_field(Field f, std::string_view v, std::vector<DmarcAuthResult>& results) {
  if (!limits_.keep_record_details) {
    if (f == Field::dkim_result || f == Field::spf_result) auth_result_ = v;
  } else if (!results.empty()) {
    auth(f, v, results.back());
  }
}

void Parser::auth(Field f, std::string_view v, DmarcAuthResult& a) {
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
std::string Parser::check() const {
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

// The rule one record breaks, or nullptr (no string is built for the records that are fine).
const char* Parser::check(const DmarcRecord& r) {
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

bool Parser::bad(std::string why) {
  error_ = std::move(why);
  return false;
}

}  // namespace report_parser

std::uint64_t AggregateReport::message_count() const {
  std::uint64_t n = 0;
  for (const auto& r : records) n += r.count;
  return n;
}

ReportParseResult parse_aggregate_report(std::string_view xml, const ReportParseLimits& limits,
                                         RecordTally* tally) noexcept {
  try {
    return report_parser::Parser(limits, report_parser::Part::whole, nullptr, tally).run(xml);
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
  const auto start = report_parser::skip_prolog(data.substr(0, std::size_t{64} * 1024));
  if (start == std::string_view::npos) return false;
  // A DOCTYPE before the root still makes it a report candidate: it is then filed as Invalid, not as mail.
  const auto window = data.substr(start, std::size_t{64} * 1024);
  if (window.rfind("<!DOCTYPE", 0) == 0) return window.find("feedback") != std::string_view::npos;
  return window.rfind("<feedback", 0) == 0 && window.size() > 9 &&
         (window[9] == '>' || window[9] == ' ' || window[9] == '\t' || window[9] == '\r' ||
          window[9] == '\n' || window[9] == '/');
}

}  // namespace chainmail
