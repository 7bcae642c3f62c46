// report_parts_test.cc - aggregate, failure or neither, whatever the sender's MIME labelling.
#include "adapters/mime/report_parts.h"

#include <gtest/gtest.h>

#include "adapters/mime/from_header.h"

namespace chainmail {
namespace {

std::string xml_doc() {
  return "<?xml version=\"1.0\"?>\n<feedback><report_metadata/></feedback>\n";
}

std::string attached(std::string_view type, std::string_view name, std::string_view body) {
  std::string m =
      "From: r@x.example\nSubject: Report domain: example.com\nMIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhello\n--b\n"
      "Content-Type: ";
  m += type;
  if (!name.empty()) {
    m += "; name=\"";
    m += name;
    m += "\"";
  }
  m += "\n\n";
  m += body;
  m += "\n--b--\n";
  return m;
}

struct Case {
  std::string name;
  std::string message;
  ReportKind want;
};

TEST(ReportParts, ClassifiesByContentNotLabel) {
  const std::string arf =
      "From: r@x.example\nSubject: report\nMIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n--b\nContent-Type: "
      "text/plain\n\n"
      "An authentication failure.\n--b\nContent-Type: message/feedback-report\n\nFeedback-Type: "
      "auth-failure\n"
      "Version: 1\n\n--b\nContent-Type: text/rfc822-headers\n\nFrom: x@example.com\n\n--b--\n";
  const std::string abuse_arf = std::string(arf).replace(arf.find("auth-failure"), 12, "abuse");
  const std::vector<Case> cases = {
      {"text/xml attachment", attached("text/xml", "r.xml", xml_doc()), ReportKind::Aggregate},
      {"application/xml", attached("application/xml", "", xml_doc()), ReportKind::Aggregate},
      {"octet-stream named .xml", attached("application/octet-stream", "r.xml", xml_doc()),
       ReportKind::Aggregate},
      {"octet-stream inline xml", attached("application/octet-stream", "", xml_doc()), ReportKind::Aggregate},
      {"x-gzip", attached("application/x-gzip", "r.xml.gz", "\x1f\x8b..."), ReportKind::Aggregate},
      {"zip", attached("application/zip", "r.zip", "PK..."), ReportKind::Aggregate},
      {"inline body", "From: r@x.example\nSubject: r\n\n" + xml_doc(), ReportKind::Aggregate},
      {"arf auth-failure", arf, ReportKind::Failure},
      {"arf abuse", abuse_arf, ReportKind::Neither},
      {"non-arf by subject", "From: r@x\nSubject: DMARC Forensic Report for example.com\n\nfailed\n",
       ReportKind::Failure},
      {"plain mail", "From: a@b\nSubject: lunch?\n\nAt noon.\n", ReportKind::Neither},
      {"pdf", attached("application/pdf", "r.pdf", "%PDF"), ReportKind::Neither},
  };
  init_mime();
  for (const auto& c : cases) {
    const auto got = classify_report_message(c.message);
    EXPECT_EQ(got.kind, c.want) << c.name << ": " << got.why;
  }
}

TEST(ReportParts, DoesNotSearchTheEmbeddedOriginalMessage) {
  init_mime();
  const std::string m =
      "From: r@x\nSubject: hello\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
      "Content-Type: message/rfc822\n\nFrom: y@z\nSubject: inner\nContent-Type: text/xml\n\n" +
      xml_doc() + "\n--b--\n";
  EXPECT_EQ(classify_report_message(m).kind, ReportKind::Neither);
}

TEST(ReportParts, DecodesTheTransferEncoding) {
  init_mime();
  const std::string m =
      "From: r@x\nSubject: r\nMIME-Version: 1.0\nContent-Type: text/xml\nContent-Transfer-Encoding: "
      "base64\n\n"
      "PGZlZWRiYWNrLz4=\n";
  const auto got = classify_report_message(m);
  ASSERT_EQ(got.kind, ReportKind::Aggregate);
  ASSERT_EQ(got.reports.size(), 1U);
  EXPECT_EQ(got.reports[0].data, "<feedback/>");
}

}  // namespace
}  // namespace chainmail
