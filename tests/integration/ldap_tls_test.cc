// ldap_tls_test.cc: the LDAP directory over TLS, for real. A slapd with a throwaway CA's server certificate
// (made with the openssl command once per suite) listens on ldap:// (StartTLS) and ldaps://.
// - ldaps:// and StartTLS with directory.ca_file = that CA route, and slapd's log (-d stats) shows that every
//   connection of the run negotiated TLS before its bind and its searches.
// - A CA that did not sign the server certificate, no CA at all, a host name the certificate does not name,
//   or StartTLS against a server without TLS: temporary trouble (exit 75), never routed, never "unknown",
//   and the bind password never reaches the server (no BIND in slapd's log), so no plaintext fall-back.
// - A hung server: trouble within the timeouts. Over ldaps:// that fails today (libldap 2.5 bug, see
//   HungLdapsServerIsTemporaryTroubleWithinTimeouts).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "harness/paths.h"
#include "harness/process.h"
#include "harness/slapd.h"
#include "harness/temp_dir.h"
#include "integration_support.h"

namespace chainmail::integration {
namespace {

using std::chrono::seconds;
namespace fs = std::filesystem;

void openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "openssl");
  const harness::RunResult r = harness::run(args, {}, seconds(30));
  if (r.exit_code != 0) {
    std::string command;
    for (const auto& a : args) command += (command.empty() ? "" : " ") + a;
    throw std::runtime_error(command + " failed (exit " + std::to_string(r.exit_code) + "):\n" + r.out +
                             r.err);
  }
}

// A P-256 key and a self-signed CA certificate.
void make_ca(const fs::path& cert, const fs::path& key, const std::string& subject) {
  openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days",
           "2", "-subj", subject, "-keyout", key.string(), "-out", cert.string(), "-addext",
           "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
}

// A P-256 key and a server certificate for 127.0.0.1 (CN, and subjectAltName IP, which libldap checks
// against the URI's host) signed by the CA (ca_cert, ca_key).
void make_server_cert(const fs::path& cert, const fs::path& key, const fs::path& ca_cert,
                      const fs::path& ca_key) {
  openssl({"req",
           "-x509",
           "-newkey",
           "ec",
           "-pkeyopt",
           "ec_paramgen_curve:prime256v1",
           "-nodes",
           "-days",
           "2",
           "-subj",
           "/CN=127.0.0.1",
           "-keyout",
           key.string(),
           "-out",
           cert.string(),
           "-CA",
           ca_cert.string(),
           "-CAkey",
           ca_key.string(),
           "-addext",
           "subjectAltName=IP:127.0.0.1",
           "-addext",
           "basicConstraints=critical,CA:FALSE",
           "-addext",
           "extendedKeyUsage=serverAuth"});
}

// The suite's certificates and its TLS slapd.
struct Suite {
  std::unique_ptr<harness::TempDir> pki;
  fs::path ca;        // signed the server certificate
  fs::path other_ca;  // unrelated CA
  fs::path impostor;  // a different CA with the very same subject name as `ca`
  std::unique_ptr<harness::Slapd> slapd;
  std::string start_error;
};

Suite& suite() {
  static Suite s;
  return s;
}

struct Tls {
  std::string ca_file;  // empty: no ca_file line
  bool starttls = false;
};

// demo_config() with small timeouts, plus directory.ca_file / directory.starttls (which conf/chainmail.conf
// does not spell out: they go right under [directory] unless the file already has them).
std::string tls_config(const std::vector<std::string>& uris, const Tls& tls) {
  std::map<std::string, std::string> settings = {{"connect_timeout_ms", "1000"},
                                                 {"search_timeout_ms", "1000"}};
  std::string extra;
  const auto add = [&](const std::string& name, const std::string& value) {
    if (read_text(harness::source_dir() / "conf" / "chainmail.conf").find("\n" + name + " =") !=
        std::string::npos) {
      settings[name] = value;
    } else {
      extra += name + " = " + value + "\n";
    }
  };
  if (!tls.ca_file.empty()) add("ca_file", toml_string(tls.ca_file));
  if (tls.starttls) add("starttls", "true");
  std::string text = demo_config(uris, settings);
  const std::string section = "[directory]\n";
  const std::size_t at = text.find(section);
  if (at == std::string::npos) throw std::runtime_error("conf/chainmail.conf has no [directory] section");
  text.insert(at + section.size(), extra);
  return text;
}

// The StartTLS extended operation, as slapd logs it ("EXT oid=...").
constexpr std::string_view kStartTlsOid = "EXT oid=1.3.6.1.4.1.1466.20037";

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// slapd's log from `offset` on, line by line, grouped by connection ("conn=1004"): the connections accepted
// since then that did something. Left out: an earlier connection that still logs its UNBIND or "closed"
// after the offset (no ACCEPT line since), and connections only opened and closed again (the harness's port
// probes at start). The ACCEPT line need not come first: slapd's listener thread logs it, and can do so
// after a worker thread has already logged the connection's first operation.
std::map<std::string, std::vector<std::string>> connections(const fs::path& log, std::size_t offset) {
  const std::string text = read_text(log);
  std::map<std::string, std::vector<std::string>> out;
  std::size_t pos = std::min(offset, text.size());
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t conn = line.find(" conn=");
    if (conn == std::string::npos) continue;
    const std::size_t conn_end = line.find(' ', conn + 1);
    out[line.substr(conn + 1, conn_end - conn - 1)].push_back(line);
  }
  std::erase_if(out, [](const auto& conn) {
    const auto& lines = conn.second;
    const bool idle = std::all_of(lines.begin(), lines.end(), [](const std::string& l) {
      return contains(l, " ACCEPT from ") || contains(l, " closed");
    });
    const bool accepted = std::any_of(lines.begin(), lines.end(),
                                      [](const std::string& l) { return contains(l, " ACCEPT from "); });
    return idle || !accepted;
  });
  return out;
}

// connections(), once slapd has logged every connection of the run to its end. slapd writes an
// operation's stats line after sending the result, so the client can exit before the lines that prove what
// it did are in the log; this waits (5 s at most) until each connection found has its " closed" line.
std::map<std::string, std::vector<std::string>> settled_connections(const fs::path& log, std::size_t offset) {
  auto all_closed = [](const std::map<std::string, std::vector<std::string>>& conns) {
    return !conns.empty() && std::all_of(conns.begin(), conns.end(), [](const auto& conn) {
      return std::any_of(conn.second.begin(), conn.second.end(),
                         [](const std::string& l) { return contains(l, " closed"); });
    });
  };
  auto conns = connections(log, offset);
  for (int i = 0; i < 100 && !all_closed(conns); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    conns = connections(log, offset);
  }
  return conns;
}

// Index of the first line containing `part`, or lines.size().
std::size_t first(const std::vector<std::string>& lines, std::string_view part) {
  std::size_t i = 0;
  while (i < lines.size() && !contains(lines[i], part)) ++i;
  return i;
}

class Ldaptls : public testing::Test {
 public:
  static void SetUpTestSuite() {
    Suite& s = suite();
    s.start_error.clear();
    try {
      s.pki = std::make_unique<harness::TempDir>("tls");
      const fs::path& d = s.pki->path();
      s.ca = d / "ca.crt";
      s.other_ca = d / "other-ca.crt";
      s.impostor = d / "impostor-ca.crt";
      make_ca(s.ca, d / "ca.key", "/O=chainmail tests/CN=chainmail test CA");
      make_ca(s.other_ca, d / "other-ca.key", "/O=elsewhere/CN=unrelated test CA");
      make_ca(s.impostor, d / "impostor-ca.key", "/O=chainmail tests/CN=chainmail test CA");
      make_server_cert(d / "server.crt", d / "server.key", s.ca, d / "ca.key");

      harness::SlapdOptions options;
      options.tls = harness::SlapdTls{d / "server.crt", d / "server.key", s.ca};
      s.slapd = std::make_unique<harness::Slapd>();
      s.slapd->start(harness::demo_ldif(), options);
    } catch (const std::exception& e) {
      s.slapd.reset();
      s.start_error = e.what();
    }
  }
  static void TearDownTestSuite() {
    suite().slapd.reset();
    suite().pki.reset();
  }

 protected:
  void SetUp() override {
    ASSERT_NE(suite().slapd, nullptr) << "TLS slapd did not start: " << suite().start_error;
  }

  static harness::Slapd& slapd() { return *suite().slapd; }
  static std::size_t log_size() { return read_text(slapd().log_path()).size(); }

  // Routes joe (a user with a forward) and devops (a group: several lookups), then checks slapd's log: at
  // least one connection, each accepted on `port`, TLS established before any bind or search (after a
  // STARTTLS operation when `starttls`), and the bind with a non-zero security strength factor.
  static void expect_routed_over_tls(const ConfigFile& config, std::uint16_t port, bool starttls) {
    const std::size_t offset = log_size();
    const RouteRun r = route(config.path(), {"joe@pydis.wtf", "devops@pydis.wtf"});
    EXPECT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
    ASSERT_TRUE(r.json.is_array()) << r.run.out << r.run.err;
    ASSERT_EQ(r.json.size(), 2U) << r.run.out << r.run.err;
    EXPECT_EQ(targets_of(r.json[0]),
              (std::vector<TargetView>{{"forward", "joe@jb3.dev", "forward>external"}}));
    EXPECT_EQ(r.json[1].value("outcome", ""), "routed") << r.json[1].dump(2);
    EXPECT_EQ(r.json[1]["targets"].size(), 4U) << r.json[1].dump(2);
    EXPECT_FALSE(has_sanitizer_report(r.run.err)) << r.run.err;

    const auto conns = settled_connections(slapd().log_path(), offset);
    ASSERT_FALSE(conns.empty()) << "no connection in " << slapd().log_path();
    bool searched_joe = false;
    for (const auto& [id, lines] : conns) {
      std::string all;
      for (const auto& l : lines) all += l + "\n";
      const std::size_t accept = first(lines, " ACCEPT from ");
      ASSERT_LT(accept, lines.size()) << id << ":\n" << all;
      EXPECT_TRUE(contains(lines[accept], "(IP=127.0.0.1:" + std::to_string(port) + ")")) << all;
      const std::size_t tls = first(lines, " TLS established ");
      ASSERT_LT(tls, lines.size()) << id << " never negotiated TLS:\n" << all;
      const std::size_t start_tls = first(lines, " STARTTLS");
      if (starttls) {
        EXPECT_LT(start_tls, tls) << all;
      } else {
        EXPECT_EQ(start_tls, lines.size()) << all;
      }
      const std::size_t bind = first(lines, " mech=SIMPLE ");
      ASSERT_LT(bind, lines.size()) << id << " never bound:\n" << all;
      EXPECT_LT(tls, bind) << all;
      EXPECT_FALSE(contains(lines[bind], " ssf=0")) << all;
      for (std::size_t i = 0; i < lines.size(); ++i) {
        if (contains(lines[i], " SRCH ") || contains(lines[i], " BIND ")) {
          EXPECT_LT(tls, i) << all;
        }
      }
      searched_joe = searched_joe || first(lines, "filter=\"(mail=joe@pydis.wtf)\"") < lines.size();
    }
    EXPECT_TRUE(searched_joe) << "no search for joe in the log since offset " << offset;
  }

  // slapd paused (SIGSTOP) while `chainmail route` looks joe up over `uri`: exit 75 within a few timeouts.
  static void expect_hung_is_trouble(const std::string& uri, bool starttls) {
    const ConfigFile config(tls_config({uri}, {suite().ca.string(), starttls}));
    slapd().pause();
    const RouteRun r = route(config.path(), {"joe@pydis.wtf"}, seconds(8));
    slapd().resume();
    EXPECT_FALSE(r.run.timed_out) << "still running after 8 s (1 s timeouts)";
    EXPECT_EQ(r.run.exit_code, 75) << r.run.out << r.run.err;
    EXPECT_LT(r.elapsed, seconds(5));
    ASSERT_TRUE(r.json.is_array()) << r.run.out << r.run.err;
    ASSERT_EQ(r.json.size(), 1U) << r.run.out << r.run.err;
    EXPECT_EQ(r.json[0].value("trouble", ""), "temporary") << r.json[0].dump(2);
    EXPECT_TRUE(r.json[0]["targets"].empty()) << r.json[0].dump(2);
  }

  // Exit 75, temporary trouble naming `uri`, no targets; and in `log` (from `offset` on) the client reached
  // the server but never sent its bind or a search.
  static void expect_refused(const RouteRun& r, const std::string& uri, const fs::path& log,
                             std::size_t offset) {
    EXPECT_EQ(r.run.exit_code, 75) << r.run.out << r.run.err;
    ASSERT_TRUE(r.json.is_array()) << r.run.out << r.run.err;
    ASSERT_EQ(r.json.size(), 1U) << r.run.out << r.run.err;
    const auto& result = r.json[0];
    EXPECT_EQ(result.value("outcome", ""), "trouble") << result.dump(2);
    EXPECT_EQ(result.value("trouble", ""), "temporary") << result.dump(2);
    EXPECT_TRUE(result["targets"].empty()) << result.dump(2);
    const std::string reason = result.value("reason", "");
    EXPECT_TRUE(contains(reason, "no LDAP server answered")) << reason;
    EXPECT_TRUE(contains(reason, uri)) << reason;
    EXPECT_LT(r.elapsed, seconds(10));
    EXPECT_FALSE(has_sanitizer_report(r.run.err)) << r.run.err;

    const auto conns = settled_connections(log, offset);
    EXPECT_FALSE(conns.empty()) << "the client never reached " << log;
    for (const auto& [id, lines] : conns) {
      for (const auto& l : lines) {
        EXPECT_FALSE(contains(l, " BIND ") || contains(l, " SRCH "))
            << id << " sent credentials or a search: " << l;
      }
    }
  }
};

// (1) ldaps:// verified with directory.ca_file.
TEST_F(Ldaptls, LdapsWithCaFileRoutes) {
  const ConfigFile config(tls_config({slapd().tls_uri()}, {suite().ca.string(), false}));
  expect_routed_over_tls(config, slapd().tls_port(), /*starttls=*/false);
}

// (2) ldap:// upgraded with StartTLS, verified with directory.ca_file.
TEST_F(Ldaptls, StartTlsWithCaFileRoutes) {
  const ConfigFile config(tls_config({slapd().uri()}, {suite().ca.string(), true}));
  expect_routed_over_tls(config, slapd().port(), /*starttls=*/true);
}

// (3) A CA that did not sign the server certificate: an unrelated one, and one with the same subject name as
// the real CA (so verification must check the signature, not just the issuer's name). Both over ldaps:// and
// StartTLS.
TEST_F(Ldaptls, UntrustedServerCertificateIsTemporaryTrouble) {
  for (const fs::path& ca : {suite().other_ca, suite().impostor}) {
    for (const bool starttls : {false, true}) {
      SCOPED_TRACE(ca.filename().string() + (starttls ? " StartTLS" : " ldaps"));
      const std::string uri = starttls ? slapd().uri() : slapd().tls_uri();
      const ConfigFile config(tls_config({uri}, {ca.string(), starttls}));
      const std::size_t offset = log_size();
      const RouteRun r = route(config.path(), {"joe@pydis.wtf"}, seconds(20));
      expect_refused(r, uri, slapd().log_path(), offset);
    }
  }
}

// ldaps:// without directory.ca_file: the system's trust store does not know the test CA.
TEST_F(Ldaptls, LdapsWithoutCaFileIsTemporaryTrouble) {
  const ConfigFile config(tls_config({slapd().tls_uri()}, {}));
  const std::size_t offset = log_size();
  const RouteRun r = route(config.path(), {"joe@pydis.wtf"}, seconds(20));
  expect_refused(r, slapd().tls_uri(), slapd().log_path(), offset);
}

// The certificate names 127.0.0.1 only: reaching the same server as "localhost" must fail verification
// (libldap checks the URI's host against the certificate).
TEST_F(Ldaptls, HostNameMismatchIsTemporaryTrouble) {
  const std::string uri = "ldaps://localhost:" + std::to_string(slapd().tls_port()) + "/";
  const ConfigFile config(tls_config({uri}, {suite().ca.string(), false}));
  const std::size_t offset = log_size();
  const RouteRun r = route(config.path(), {"joe@pydis.wtf"}, seconds(20));
  expect_refused(r, uri, slapd().log_path(), offset);
}

// A hung server (SIGSTOP: the kernel accepts the TCP connection, nothing answers) must cost about one
// timeout per URI, as over plain ldap:// (LdapFailure.PausedSlapdIsTemporaryTroubleWithinTimeouts).
//
// A hung server over ldaps:// must not hang the client: libldap 2.5.13's TLS handshake (tls2.c
// ldap_int_tls_start) retries a non-blocking read forever unless the connect is asynchronous (upstream
// ITS#8047, fixed in 2.6.10), so the LDAP directory sets LDAP_OPT_CONNECT_ASYNC. Before that fix this test
// spun at 100% CPU until killed. A server that does not answer StartTLS at all (HungStartTlsServer...) is
// bounded by LDAP_OPT_TIMEOUT.
TEST_F(Ldaptls, HungLdapsServerIsTemporaryTroubleWithinTimeouts) {
  expect_hung_is_trouble(slapd().tls_uri(), /*starttls=*/false);
}

TEST_F(Ldaptls, HungStartTlsServerIsTemporaryTroubleWithinTimeouts) {
  expect_hung_is_trouble(slapd().uri(), /*starttls=*/true);
}

// (4) StartTLS against a slapd without TLS: trouble, not a silent fall-back to plaintext (no bind, no search
// reaches that server).
TEST_F(Ldaptls, StartTlsWithoutServerTlsIsTemporaryTrouble) {
  harness::Slapd plain;
  plain.start();
  const ConfigFile config(tls_config({plain.uri()}, {suite().ca.string(), true}));
  const RouteRun r = route(config.path(), {"joe@pydis.wtf"}, seconds(20));
  expect_refused(r, plain.uri(), plain.log_path(), 0);
  // The server was asked for StartTLS (and said no: "unsupported extended operation").
  const auto conns = settled_connections(plain.log_path(), 0);
  bool asked = false;
  for (const auto& [id, lines] : conns) asked = asked || first(lines, kStartTlsOid) < lines.size();
  EXPECT_TRUE(asked) << read_text(plain.log_path());
}

// Failover across the TLS failure: an untrusted replica first, then a trusted one. The untrusted one is
// skipped, nothing is sent to it, and the lookup routes over the second.
TEST_F(Ldaptls, UntrustedFirstUriFailsOverToTrustedSecond) {
  harness::Slapd impostor;
  harness::SlapdOptions options;
  const fs::path& d = suite().pki->path();
  options.tls = harness::SlapdTls{d / "other-server.crt", d / "other-server.key", {}};
  make_server_cert(d / "other-server.crt", d / "other-server.key", suite().other_ca, d / "other-ca.key");
  impostor.start(harness::demo_ldif(), options);

  const ConfigFile config(tls_config({impostor.tls_uri(), slapd().tls_uri()}, {suite().ca.string(), false}));
  const RouteRun r = route(config.path(), {"joe@pydis.wtf"}, seconds(20));
  EXPECT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  ASSERT_TRUE(r.json.is_array()) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 1U) << r.run.out << r.run.err;
  EXPECT_EQ(targets_of(r.json[0]), (std::vector<TargetView>{{"forward", "joe@jb3.dev", "forward>external"}}));
  const auto conns = settled_connections(impostor.log_path(), 0);
  EXPECT_FALSE(conns.empty()) << "the impostor was never tried";
  for (const auto& [id, lines] : conns) {
    for (const auto& l : lines) EXPECT_FALSE(contains(l, " BIND ") || contains(l, " SRCH ")) << l;
  }
}

}  // namespace
}  // namespace chainmail::integration
