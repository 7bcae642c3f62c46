// service_mail_test.cc - the service logic in-process: recipient lookup, and every sample of the shared DMARC
// corpus (../shared/testdata/dmarc) filed into a temporary Maildir and read back.
//
// The corpus folder names the expected folder: aggregate/ -> Reports.New, aggregate_invalid/ ->
// Reports.Invalid, failure/ -> Failures. Exceptions, decided by content (parsedmarc's samples include
// deliberately broken ones it tolerates; chainmail files what does not parse as Invalid):
//   aggregate/invalid_xml.xml   - not well-formed XML (<email><bad-xml@...></email>) -> Reports.Invalid
//   aggregate/invalid_utf_8.xml - declares UTF-8 but holds an invalid byte sequence    -> Reports.Invalid
//   aggregate/ikea.com!example.de!1538690400!1538776800.xml - a stray, never closed <xs:schema> start tag
//       wraps <feedback>: not well-formed XML (a real reporter's bug, tolerated by parsedmarc's regex
//       clean-up; chainmail does not repair reports)                                           ->
//       Reports.Invalid
// Bare .xml/.gz/.zip samples are attached to a message (base64, the content type their name implies).
#include "service-mail/service_mail.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "adapters/mime/report_archive.h"
#include "adapters/mime/report_parts.h"
#include "core/dmarc_report.h"
#include "service-mail/test_support.h"

namespace chainmail {
namespace {

namespace fs = std::filesystem;
using namespace chainmail::testing;

Config config_for(const fs::path& maildir) {
  Config c = default_config();
  c.services = {{"dmarc", {"dmarc-reports:" + maildir.string()}}, {"reports@pydis.wtf", {"dmarc-reports"}}};
  c.dmarc_reports.maildir = maildir.string();
  return c;
}

TEST(ServiceLookup, FindsByAddressLocalPartAndDetail) {
  const Config c = config_for("/srv/m");
  EXPECT_EQ(find_service(c, "dmarc@service-mail.localhost")->argument, "/srv/m");
  EXPECT_EQ(find_service(c, "DMARC@x.example")->kind, "dmarc-reports");
  EXPECT_EQ(find_service(c, "dmarc+google@x.example")->kind, "dmarc-reports");
  EXPECT_EQ(find_service(c, "dmarc")->kind, "dmarc-reports");
  EXPECT_EQ(find_service(c, "reports@pydis.wtf")->argument, "");
  EXPECT_FALSE(find_service(c, "reports@other.example"));
  EXPECT_FALSE(find_service(c, "joe@pydis.wtf"));
  EXPECT_FALSE(find_service(c, ""));
}

TEST(ServiceReply, ComesFromThePublicAddressNotTheInternalOne) {
  Config c = default_config();
  c.routing.service_domain = "service-mail.localhost";
  c.transport = {{"fortune@int.pydis.wtf", {"fortune"}},
                 {"help@pydis.wtf", {"helpdesk"}},
                 {"help@pydis.com", {"helpdesk"}},
                 {"fredrick", {"fredrick"}}};
  auto from = [&](const std::string& rcpt, const std::string& orig, const std::string& set = "") {
    Config::Autoreply a = c.autoreply;
    a.from = set;
    const auto addr = reply_address(c, a, Envelope{"joe@example.org", rcpt, orig, "Q1"});
    return addr ? addr->str() : std::string("none");
  };
  // As the milter delivers it: both the recipient and ${original_recipient} are internal.
  EXPECT_EQ(from("fortune@service-mail.localhost", "fortune@service-mail.localhost"),
            "fortune@int.pydis.wtf");
  EXPECT_EQ(from("Fortune+x@Service-Mail.localhost", ""), "fortune@int.pydis.wtf");
  // Two public addresses for one service: no guess.
  EXPECT_EQ(from("helpdesk@service-mail.localhost", ""), "none");
  EXPECT_EQ(from("helpdesk@service-mail.localhost", "", "help@pydis.wtf"), "help@pydis.wtf");
  // A bare-local-part key names no address: the internal one is all there is.
  EXPECT_EQ(from("fredrick@service-mail.localhost", ""), "fredrick@service-mail.localhost");
  // Delivered some other way (a pipe entry of its own): the original recipient as before.
  EXPECT_EQ(from("fortune@int.pydis.wtf", "fortune@pydis.wtf"), "fortune@pydis.wtf");
  EXPECT_EQ(from("x@service-mail.localhost", "", "not an address"), "none");
}

TEST(ServiceLog, AttackerTextIsEscapedAndCut) {
  EXPECT_EQ(log_safe("a\nb\x7f"), "a\\x0ab\\x7f");
  EXPECT_EQ(log_safe(std::string(300, 'x'), 10), "xxxxxxxxxx...");
  EXPECT_EQ(log_safe("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(ServiceLookup, UnknownRecipientIsPermanentAndUnknownKindWaits) {
  const auto dir = make_temp_dir();
  Config c = config_for(dir);
  EXPECT_EQ(run_service(c, {"a@b.example", "joe@pydis.wtf", "", ""}, "Subject: x\n\nhi\n").exit_code,
            kExitNoUser);
  c.services["later"] = {"autoreply"};
  EXPECT_EQ(run_service(c, {"a@b.example", "later@x", "", ""}, "Subject: x\n\nhi\n").exit_code,
            kExitTempFail);
  fs::remove_all(dir);
}

// The record count of every report in a sample, counted by Python's own gzip/zipfile/email modules.
std::map<std::string, long> python_record_counts(const fs::path& dir) {
  const std::string script = R"PY(
import email, io, os, sys, zipfile, zlib
def unpack(b):
    if b[:2] == b'\x1f\x8b': return zlib.decompressobj(31).decompress(b)  # trailing bytes tolerated
    if b[:2] == b'PK':
        z = zipfile.ZipFile(io.BytesIO(b)); return z.read(z.namelist()[0])
    return b
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(root, f); b = open(p, 'rb').read(); n = 0
        if f.endswith('.eml'):
            for part in email.message_from_bytes(b).walk():
                if part.is_multipart(): continue
                d = part.get_payload(decode=True) or b''
                try: n += unpack(d).count(b'<record>')
                except Exception: pass
        else:
            try: n = unpack(b).count(b'<record>')
            except Exception: n = -1
        print(n, os.path.relpath(p, sys.argv[1]))
)PY";
  const auto script_file = fs::temp_directory_path() / ("count-records-" + std::to_string(getpid()) + ".py");
  spit(script_file, script);
  std::map<std::string, long> out;
  const std::string cmd = "/usr/bin/python3 " + script_file.string() + " '" + dir.string() + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  std::array<char, 4096> line{};
  while (p && fgets(line.data(), line.size(), p.get()) != nullptr) {
    std::string l(line.data());
    if (!l.empty() && l.back() == '\n') l.pop_back();
    const auto sp = l.find(' ');
    out[l.substr(sp + 1)] = std::stol(l.substr(0, sp));
  }
  fs::remove(script_file);
  return out;
}

TEST(DmarcCorpus, EverySampleIsFiledWhereItsFolderSaysAndParsesBack) {
  const fs::path samples = CHAINMAIL_DMARC_SAMPLES;
  ASSERT_TRUE(fs::is_directory(samples)) << samples;
  const std::map<std::string, std::string> by_dir = {
      {"aggregate", "Reports.New"}, {"aggregate_invalid", "Reports.Invalid"}, {"failure", "Failures"}};
  const std::set<std::string> broken = {"aggregate/invalid_xml.xml", "aggregate/invalid_utf_8.xml",
                                        "aggregate/ikea.com!example.de!1538690400!1538776800.xml"};
  const auto counts = python_record_counts(samples);
  int checked = 0;
  for (const auto& [sub, folder] : by_dir) {
    for (const auto& entry : fs::directory_iterator(samples / sub)) {
      const std::string name = entry.path().filename().string();
      const std::string rel = sub + "/" + name;
      SCOPED_TRACE(rel);
      const auto dir = make_temp_dir();
      const Config c = config_for(dir);
      std::string message = slurp(entry.path());
      if (!name.ends_with(".eml")) message = report_message(name, content_type_for(name), message);
      const auto out =
          run_service(c, {"r@reporter.example", "dmarc@service-mail.localhost", "", "Q1"}, message);
      ASSERT_EQ(out.exit_code, kExitOk) << out.detail;
      const std::string want = broken.count(rel) != 0 ? "Reports.Invalid" : folder;
      EXPECT_EQ(out.folder, want) << out.detail;
      const auto filed = files_in(dir / ("." + want) / "new");
      ASSERT_EQ(filed.size(), 1U);
      EXPECT_TRUE(files_in(dir / ("." + want) / "tmp").empty());
      const std::string stored = slurp(filed.front());
      EXPECT_EQ(stored, message);
      EXPECT_NE(filed.front().filename().string().find(",S=" + std::to_string(message.size())),
                std::string::npos);
      if (want == "Reports.New") {
        // Read back from the Maildir: the same records as the sample holds.
        const auto again = classify_report_message(stored);
        ASSERT_EQ(again.kind, ReportKind::Aggregate);
        std::size_t records = 0;
        for (const auto& part : again.reports) {
          const auto xml = extract_report(part.data, {});
          ASSERT_TRUE(xml.ok()) << xml.error;
          const auto report = parse_aggregate_report(*xml.xml);
          ASSERT_TRUE(report.ok()) << report.error;
          EXPECT_GT(report.report->message_count(), 0U);
          records += report.report->records.size();
        }
        ASSERT_EQ(counts.count(rel), 1U);
        EXPECT_EQ(static_cast<long>(records), counts.at(rel));
      }
      ++checked;
      fs::remove_all(dir);
    }
  }
  EXPECT_GE(checked, 25);
}

struct HostileCase {
  std::string name;
  std::string message;
  std::string folder;
};

TEST(DmarcHostile, UnsafeOrBrokenReportsAreFiledAsInvalid) {
  const std::string xml =
      "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>o</org_name><report_id>1</report_id>"
      "<date_range><begin>1</begin><end>2</end></date_range></report_metadata><policy_published><domain>"
      "example.com</domain><p>none</p></policy_published></feedback>";
  std::string laughs = "<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY a \"aaaaaaaaaa\">";
  for (int i = 1; i < 10; ++i) {
    laughs += "<!ENTITY a" + std::to_string(i) + " \"";
    for (int j = 0; j < 10; ++j) laughs += (i == 1 ? std::string("&a;") : "&a" + std::to_string(i - 1) + ";");
    laughs += "\">";
  }
  laughs += "]><feedback><report_metadata><org_name>&a9;</org_name></report_metadata></feedback>";
  const std::string xxe =
      "<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
      "<feedback><report_metadata><org_name>&x;</org_name></report_metadata></feedback>";
  const fs::path samples = CHAINMAIL_DMARC_SAMPLES;
  const std::string gz =
      slurp(samples / "aggregate/fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz");
  const std::string zip = slurp(
      samples / "aggregate/estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip");
  // Damaged on its way: the gzip trailer's CRC-32 no longer matches (read anyway, the report would show other
  // numbers).
  std::string bad_crc = gz;
  bad_crc[bad_crc.size() - 8] = static_cast<char>(bad_crc[bad_crc.size() - 8] ^ 0x5a);
  const std::vector<HostileCase> cases = {
      {"valid inline", report_message("r.xml", "text/xml", xml), "Reports.New"},
      {"billion laughs", report_message("r.xml", "text/xml", laughs), "Reports.Invalid"},
      {"external entity", report_message("r.xml", "application/octet-stream", xxe), "Reports.Invalid"},
      {"truncated gzip", report_message("r.xml.gz", "application/gzip", gz.substr(0, gz.size() - 20)),
       "Reports.Invalid"},
      {"gzip with a wrong CRC-32", report_message("r.xml.gz", "application/gzip", bad_crc),
       "Reports.Invalid"},
      {"truncated zip", report_message("r.zip", "application/zip", zip.substr(0, zip.size() / 2)),
       "Reports.Invalid"},
      {"gzip labelled octet-stream", report_message("r.xml.gz", "application/octet-stream", gz),
       "Reports.New"},
      {"plain mail", "From: a@b.example\nSubject: hello\n\nJust mail.\n", "INBOX"},
  };
  for (const auto& c : cases) {
    const auto dir = make_temp_dir();
    const auto out = run_service(config_for(dir), {"a@b.example", "dmarc@x", "", ""}, c.message);
    EXPECT_EQ(out.exit_code, kExitOk) << c.name << ": " << out.detail;
    EXPECT_EQ(out.folder, c.folder) << c.name << ": " << out.detail;
    EXPECT_EQ(out.detail.find("root:x:0:0"), std::string::npos) << c.name;
    fs::remove_all(dir);
  }
}

}  // namespace
}  // namespace chainmail
