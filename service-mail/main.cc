// main.cc - chainmail-service-mail: the Postfix pipe(8) transport for automated-service recipients.
//
//   chainmail-service-mail --config /etc/chainmail/chainmail.conf --sender ${sender}
//       --recipient ${recipient} [--original-recipient ${original_recipient}] [--queue-id ${queue_id}]
//
// The message is read from stdin (at most dmarc_reports.max_message_bytes) and handed to the service the
// recipient names in [services] (service_mail.h). One log line per message (syslog, mail facility, or stderr
// as service_mail.log says); on failure the reason is also written to stderr, which pipe(8) puts in the defer
// or bounce text.
//
// SECURITY: refuses to run as root. Running as root is a configuration error (pipe(8) itself refuses
// user=root; this catches a hand-run or a wrapper), and the answer is 75 EX_TEMPFAIL rather than 78
// EX_CONFIG: Postfix bounces on 78, and a message must not be lost because master.cf is wrong. It waits in
// the queue while the operator fixes the user= attribute.
//
// DIAGNOSTICS: exit 0 filed (autoreply: answered or rightly not; exec: the command succeeded); 67 unknown
// recipient; 65 message over the size limit; exec: the command's sysexits code or exec.failure_exit; 75
// everything temporary (configuration unreadable, disk full, I/O error, root, a helper command or sendmail
// that failed or timed out).
#include <syslog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "adapters/config_loader.h"
#include "service-mail/service_mail.h"

namespace {

using chainmail::kExitDataErr;
using chainmail::kExitTempFail;
using chainmail::log_safe;

struct Logger {
  bool to_syslog = true;

  void line(int priority, const std::string& text) const {
    if (to_syslog) {
      syslog(priority, "%s", text.c_str());
    } else {
      std::cerr << "chainmail-service-mail: " << text << '\n';
    }
  }
};

// Reads stdin up to `max` bytes; sets `too_big` when there is more. Returns false on a read error.
bool read_message(std::size_t max, std::string& out, bool& too_big) {
  std::array<char, std::size_t{64} * 1024> buf{};
  too_big = false;
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (out.size() + static_cast<std::size_t>(n) > max) {
      too_big = true;
      return true;
    }
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
}

int run(int argc, char** argv) {
  CLI::App app{
      "chainmail-service-mail: files mail for automated-service recipients (Postfix pipe transport)"};
  std::string config_file = "/etc/chainmail/chainmail.conf";
  chainmail::Envelope env;
  app.add_option("-c,--config", config_file, "chainmail.conf to read");
  app.add_option("-f,--sender", env.sender, "envelope sender (${sender})");
  app.add_option("-r,--recipient", env.recipient, "envelope recipient (${recipient})")->required();
  app.add_option("-o,--original-recipient", env.original_recipient,
                 "original recipient (${original_recipient})");
  app.add_option("-q,--queue-id", env.queue_id, "Postfix queue id (${queue_id})");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A wrong master.cf line: keep the mail (75) and say why.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitTempFail;
  }

  openlog("chainmail-service-mail", LOG_PID, LOG_MAIL);
  Logger log;
  const std::string who = (env.queue_id.empty() ? std::string("NOQUEUE") : log_safe(env.queue_id, 40)) +
                          ": from=<" + log_safe(env.sender) + "> to=<" + log_safe(env.recipient) +
                          "> orig_to=<" + log_safe(env.original_recipient) + ">";
  auto fail_early = [&](int code, const std::string& why) {
    log.line(LOG_ERR, who + " status=deferred (" + why + ")");
    std::cerr << why << '\n';
    return code;
  };

  if (::geteuid() == 0) {
    return fail_early(kExitTempFail,
                      "refusing to run as root: set user= on the service-mail pipe entry in master.cf "
                      "(the mail storage user)");
  }
  const auto loaded = chainmail::load_config_file(config_file);
  if (!loaded.ok()) {
    return fail_early(kExitTempFail, "configuration error: " + log_safe(loaded.errors.front()));
  }
  const auto& config = loaded.config;
  log.to_syslog = config.service_mail.log == "syslog";

  std::string message;
  bool too_big = false;
  if (!read_message(static_cast<std::size_t>(config.dmarc_reports.max_message_bytes), message, too_big)) {
    return fail_early(kExitTempFail, std::string("cannot read the message: ") + std::strerror(errno));
  }
  if (too_big) {
    const std::string why = "message larger than dmarc_reports.max_message_bytes";
    log.line(LOG_WARNING, who + " status=bounced (" + why + ")");
    std::cerr << why << '\n';
    return kExitDataErr;
  }

  const auto outcome = chainmail::run_service(config, env, message);
  const char* status = outcome.exit_code == 0               ? "sent"
                       : outcome.exit_code == kExitTempFail ? "deferred"
                                                            : "bounced";
  log.line(outcome.exit_code == 0 ? LOG_INFO : LOG_WARNING, who + " size=" + std::to_string(message.size()) +
                                                                " status=" + status + " (" +
                                                                log_safe(outcome.detail, 400) + ")");
  if (outcome.exit_code != 0) std::cerr << log_safe(outcome.detail, 400) << '\n';
  return outcome.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (...) {
    return kExitTempFail;  // whatever went wrong, the message stays in the queue
  }
}
