// tls.cc: see tls.h.
#include "harness/tls.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "harness/process.h"

namespace chainmail::harness {

TlsCert::TlsCert(const TlsCertOptions& options)
    : dir_("tls"), cert_(dir_.path() / "cert.pem"), key_(dir_.path() / "key.pem") {
  // subjectAltName: modern clients (Python's ssl) match the host name against the SAN, not the CN.
  std::string san = "subjectAltName=DNS:";
  san += options.common_name;
  san += ",IP:127.0.0.1";
  const std::vector<std::string> argv = {"openssl",  "req",
                                         "-x509",    "-newkey",
                                         "rsa:2048", "-nodes",
                                         "-subj",    "/CN=" + options.common_name,
                                         "-days",    std::to_string(options.days),
                                         "-addext",  san,
                                         "-keyout",  key_.string(),
                                         "-out",     cert_.string()};
  const RunResult r = run(argv, {}, std::chrono::seconds(60));
  if (r.exit_code != 0) throw std::runtime_error("openssl req -x509 failed: " + r.err);
}

}  // namespace chainmail::harness
