// dmarc_report_parser.h - the SAX parser behind parse_aggregate_report(), shared by the serial parse
// (dmarc_report.cc) and the parse of a document in two halves (dmarc_report_split.cc). Internal to core/: the
// public interface is dmarc_report.h.
#pragma once

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dmarc_report.h"
#include "core/dmarc_report_fields.h"

namespace chainmail::report_parser {

inline bool xml_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Skips a UTF-8 byte order mark, white space, the XML declaration, processing instructions and comments.
// Returns the offset of the first other markup ('<'), or npos when the prolog does not end.
std::size_t skip_prolog(std::string_view d);

// libxml2's one-time set-up (xmlInitParser(), chainmail's external entity loader, and the handler of errors
// raised without a parser context), on the calling thread; before two threads use libxml2 at once, as
// xmlInitParser() is not thread-safe.
void init_libxml();

// Reserves room for every record a document of document_bytes can hold (see kMinRecordBytes); best effort.
void reserve_records(std::vector<DmarcRecord>& records, std::size_t document_bytes,
                     const ReportParseLimits& limits) noexcept;

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

// What a Parser reads. A whole document is the serial parse. The head and tail of a split document (see
// split_parse()) are read as the serial parse reads those parts, except that the tail accepts nothing but
// <record> directly under <feedback> (a report_metadata, policy_published or version after the cut would be
// lost with the tail's report), and each half stops as soon as the other has failed.
enum class Part { whole, head, tail };

// One document (or one half of one), read once by libxml2 into a report, or why it is not one.
class Parser {
 public:
  explicit Parser(const ReportParseLimits& limits, Part part = Part::whole,
                  std::atomic<bool>* abandoned = nullptr, RecordTally* tally = nullptr)
      : limits_(limits), part_(part), abandoned_(abandoned), tally_(tally) {}

  // The serial parse: the whole document, then the schema rules.
  ReportParseResult run(std::string_view xml);

  // Why a document is refused before libxml2 sees it, or "".
  static std::string refused_unread(std::string_view xml);

  // Reads the document made of the pieces (in turn) with libxml2: true when it is well-formed and broke no
  // rule or limit on the way, else error() says why. Never throws.
  bool read(const Pieces& pieces) noexcept;

  const std::string& error() const { return error_; }

  // The records read so far (the tail's are moved into the head's), and how many were read, kept or not.
  std::vector<DmarcRecord>& records() { return report_.records; }
  std::size_t records_read() const { return records_read_; }

  // For a half of a split document, after a successful read(): whether every record it read follows the
  // schema (each was checked as it closed, on the half's own thread). When one does not, the serial parse
  // decides (and names the record).
  bool records_follow_schema() const { return !first_bad_record_; }

  // After a successful read(): the report, or the first schema rule it breaks.
  ReportParseResult result();

 private:
  using Field = report_fields::Field;
  struct BadRecord {
    std::size_t index = 0;  // in reading order
    const char* why = nullptr;
  };
  void read_pieces(const Pieces& pieces);
  // The per-event work below is declared inline, as it was when it was defined in the class: defined (and
  // called) in dmarc_report.cc only, where the compiler then folds it into libxml2's callbacks as before
  // (out of line, without the hint, the 1 MB report took 5% longer to parse).
  template <typename F>
  static inline void guarded(void* arg, F&& f) noexcept;
  void stop();
  static inline void on_start(void* arg, const xmlChar* localname, const xmlChar* /*prefix*/,
                              const xmlChar* uri, int /*nb_namespaces*/, const xmlChar** /*namespaces*/,
                              int /*nb_attributes*/, int /*nb_defaulted*/,
                              const xmlChar** /*attributes*/) noexcept;
  static inline void on_end(void* arg, const xmlChar* /*localname*/, const xmlChar* /*prefix*/,
                            const xmlChar* /*uri*/) noexcept;
  static inline void on_text(void* arg, const xmlChar* text, int len) noexcept;
  static void on_subset(void* arg, const xmlChar* /*name*/, const xmlChar* /*external_id*/,
                        const xmlChar* /*system_id*/) noexcept;
  static void on_entity_decl(void* arg, const xmlChar* /*name*/, int /*type*/, const xmlChar* /*public_id*/,
                             const xmlChar* /*system_id*/, xmlChar* /*content*/) noexcept;
  static void on_reference(void* arg, const xmlChar* /*name*/) noexcept;
  static xmlEntityPtr on_get_entity(void* arg, const xmlChar* /*name*/) noexcept;
  static void on_error(void* arg, xmlErrorPtr err) noexcept;
  static void on_unattached_error(void* /*unused*/, xmlErrorPtr err) noexcept;
  friend void init_libxml();  // installs on_unattached_error()
  void note_error(xmlErrorPtr err) noexcept;
  inline bool characters(std::string_view value);
  inline void clear_text();
  inline bool start(std::string_view name, std::string_view ns);
  inline bool finish();
  inline bool opened(Field f);
  inline bool closed(Field f, std::string_view v);
  inline void record_closed(DmarcRecord& r);
  inline void open_auth(std::vector<DmarcAuthResult>& results);
  inline void auth_field(Field f, std::string_view v, std::vector<DmarcAuthResult>& results);
  static inline void auth(Field f, std::string_view v, DmarcAuthResult& a);
  std::string check() const;
  static inline const char* check(const DmarcRecord& r);
  inline bool bad(std::string why);
  static ReportParseResult fail(std::string why) { return {std::nullopt, std::move(why)}; }
  const ReportParseLimits& limits_;
  Part part_;
  std::atomic<bool>* abandoned_;  // set by the half that fails first; null for the serial parse
  RecordTally* tally_;            // where records go instead of report_.records, when set
  std::size_t records_read_ = 0;
  std::optional<BadRecord> first_bad_record_;
  xmlParserCtxt* ctxt_ = nullptr;  // during read() only
  // The Parser reading on this thread, during read() only: see on_unattached_error().
  static thread_local Parser* reading_;
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

}  // namespace chainmail::report_parser
