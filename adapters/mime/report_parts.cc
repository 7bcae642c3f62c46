// report_parts.cc - see report_parts.h.
#include "adapters/mime/report_parts.h"

#include <gmime/gmime.h>

#include <algorithm>
#include <memory>

#include "core/address.h"
#include "core/dmarc_report.h"

namespace chainmail {
namespace {

struct Unref {
  void operator()(void* p) const { g_object_unref(p); }
};
template <typename T>
using Ref = std::unique_ptr<T, Unref>;

struct GFree {
  void operator()(char* p) const { g_free(p); }
};
using GString = std::unique_ptr<char, GFree>;

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

bool contains_ci(std::string_view haystack, std::string_view needle) {
  return ascii_lower(haystack).find(needle) != std::string::npos;
}

std::string decoded_content(GMimePart* part) {
  GMimeDataWrapper* wrapper = g_mime_part_get_content(part);
  if (wrapper == nullptr) return {};
  Ref<GMimeStream> mem(g_mime_stream_mem_new());
  if (g_mime_data_wrapper_write_to_stream(wrapper, mem.get()) < 0) return {};
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
  if (bytes == nullptr || bytes->len == 0) return {};
  return {reinterpret_cast<const char*>(bytes->data), bytes->len};
}

// "Feedback-Type: auth-failure" as a header line of the feedback-report part (RFC 6591 section 3.1).
bool says_auth_failure(std::string_view fields) {
  const std::string lower = ascii_lower(fields);
  std::size_t at = 0;
  while ((at = lower.find("feedback-type:", at)) != std::string::npos) {
    if (at == 0 || lower[at - 1] == '\n') {
      const auto end = lower.find('\n', at);
      const auto value = lower.substr(at + 14, end == std::string::npos ? std::string::npos : end - at - 14);
      if (value.find("auth-failure") != std::string::npos) return true;
    }
    at += 14;
  }
  return false;
}

class Walker {
 public:
  explicit Walker(const ClassifyLimits& limits) : limits_(limits) {}

  void walk(GMimeObject* obj, std::size_t depth) {
    if (obj == nullptr || ++visited_ > limits_.max_parts || depth > limits_.max_depth) return;
    GMimeContentType* ct = g_mime_object_get_content_type(obj);
    const std::string type = ct != nullptr ? mime_type(ct) : "text/plain";
    if (GMIME_IS_MULTIPART(obj)) {
      if (type == "multipart/report") {
        multipart_report = true;
        const char* rt = g_mime_content_type_get_parameter(ct, "report-type");
        if (rt != nullptr && iequals(rt, "feedback-report")) arf = true;
      }
      auto* mp = GMIME_MULTIPART(obj);
      const int n = g_mime_multipart_get_count(mp);
      for (int i = 0; i < n; ++i) walk(g_mime_multipart_get_part(mp, i), depth + 1);
      return;
    }
    if (type == "message/feedback-report") {
      std::string fields;
      if (GMIME_IS_PART(obj)) {
        fields = decoded_content(GMIME_PART(obj));
      } else {
        GString text(g_mime_object_to_string(obj, nullptr));
        if (text) fields = text.get();
      }
      if (says_auth_failure(fields)) auth_failure = true;
      return;
    }
    if (!GMIME_IS_PART(obj)) return;  // message/rfc822 and the like: someone else's mail, not searched
    auto* part = GMIME_PART(obj);
    const char* name = g_mime_part_get_filename(part);
    const std::string filename = name != nullptr ? name : "";
    const bool named_report = ends_with_ci(filename, ".xml") || ends_with_ci(filename, ".gz") ||
                              ends_with_ci(filename, ".zip") || ends_with_ci(filename, ".xml.gz");
    const bool report_type = type == "application/zip" || type == "application/x-zip-compressed" ||
                             type == "application/x-zip" || type == "application/gzip" ||
                             type == "application/x-gzip" || type == "application/x-gunzip" ||
                             type == "text/xml" || type == "application/xml";
    const bool generic = type == "application/octet-stream" || type == "text/plain" ||
                         type == "application/x-compressed" || type == "application/x-zip-compressed";
    if (report_type || (generic && named_report)) {
      reports.push_back({filename, type, decoded_content(part)});
    } else if (type == "text/plain" || type == "application/octet-stream") {
      // An inline report: the body itself is the XML document.
      std::string data = decoded_content(part);
      if (looks_like_aggregate_report(data)) reports.push_back({filename, type, std::move(data)});
    }
  }

  bool multipart_report = false;
  bool arf = false;
  bool auth_failure = false;
  std::vector<ReportPart> reports;

 private:
  static std::string mime_type(GMimeContentType* ct) {
    const char* t = g_mime_content_type_get_media_type(ct);
    const char* s = g_mime_content_type_get_media_subtype(ct);
    return ascii_lower(std::string(t != nullptr ? t : "text") + "/" + (s != nullptr ? s : "plain"));
  }

  const ClassifyLimits& limits_;
  std::size_t visited_ = 0;
};

}  // namespace

ClassifiedMessage classify_report_message(std::string_view message, const ClassifyLimits& limits) {
  ClassifiedMessage out;
  Ref<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(message.data(), message.size()));
  Ref<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  Ref<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!msg) {
    out.why = "not a MIME message";
    return out;
  }
  Walker walker(limits);
  walker.walk(g_mime_message_get_mime_part(msg.get()), 0);
  const char* subject_raw = g_mime_message_get_subject(msg.get());
  const std::string subject = subject_raw != nullptr ? ascii_lower(subject_raw) : "";
  const bool failure_subject =
      subject.find("dmarc") != std::string::npos && (subject.find("failure report") != std::string::npos ||
                                                     subject.find("forensic report") != std::string::npos);
  if (walker.auth_failure) {
    out.kind = ReportKind::Failure;
    out.why = "ARF auth-failure report";
  } else if (!walker.reports.empty()) {
    out.kind = ReportKind::Aggregate;
    out.why = std::to_string(walker.reports.size()) + " report part(s)";
    out.reports = std::move(walker.reports);
  } else if (walker.arf && failure_subject) {
    out.kind = ReportKind::Failure;
    out.why = "feedback report with a DMARC failure subject";
  } else if (failure_subject || (walker.multipart_report && contains_ci(subject, "dmarc"))) {
    out.kind = ReportKind::Failure;
    out.why = "non-ARF DMARC failure report";
  } else {
    out.why = "no report found";
  }
  return out;
}

}  // namespace chainmail
