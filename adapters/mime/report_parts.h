// report_parts.h - what a message sent to the DMARC report address is: aggregate, failure, or neither
// (GMime).
//
// classify_report_message() walks the MIME tree of one message and
//  - finds aggregate report parts whatever the sender labelled them: attached or inline, application/zip,
//    application/gzip, application/x-gzip, text/xml, application/xml, application/octet-stream with an .xml,
//    .gz or .zip name, or a text body that is itself a <feedback> document (transfer encoding removed);
//  - recognises failure reports: RFC 6591 (multipart/report; report-type=feedback-report with a
//    message/feedback-report part saying Feedback-Type: auth-failure), and the non-ARF ones some senders send
//    (a multipart/report without the ARF part, or a subject naming a DMARC failure/forensic report).
// Embedded messages (message/rfc822, the copy of the failed mail in a failure report) are not searched: what
// they hold was written by whoever sent that mail.
//
// SECURITY: the message is attacker data, parsed by GMime in memory; parts visited and nesting are capped.
// Nothing is decompressed here (see report_archive.h). Call init_mime() (from_header.h) first.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace chainmail {

enum class ReportKind { Aggregate, Failure, Neither };

// Inline: programs that only show the kind (`chainmail dmarc`) need not link GMime for it.
constexpr std::string_view report_kind_name(ReportKind kind) {
  switch (kind) {
    case ReportKind::Aggregate:
      return "aggregate";
    case ReportKind::Failure:
      return "failure";
    case ReportKind::Neither:
      break;
  }
  return "other";
}

struct ReportPart {
  std::string filename;      // as the sender named it; empty when none (never used as a path)
  std::string content_type;  // type/subtype, lower case
  std::string data;          // content with the transfer encoding removed
};

struct ClassifiedMessage {
  ReportKind kind = ReportKind::Neither;
  std::vector<ReportPart> reports;  // the aggregate report candidates (kind Aggregate)
  std::string why;                  // a few words on the decision, for the log
};

struct ClassifyLimits {
  std::size_t max_parts = 100;  // MIME parts visited
  std::size_t max_depth = 10;   // multipart nesting
};

ClassifiedMessage classify_report_message(std::string_view message, const ClassifyLimits& limits = {});

}  // namespace chainmail
