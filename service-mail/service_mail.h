// service_mail.h - chainmail-service-mail's logic: which service a recipient names, and running it.
//
// Postfix's pipe(8) runs chainmail-service-mail once per recipient with the message on stdin (main.cc). Here
// the recipient is looked up in [services] (the full address first, then the local part, then the local part
// without its detail) and the message is handed to the handler of the service's kind. Kinds are a table
// (service_kinds()), so autoreply and exec can be added beside dmarc-reports without touching the dispatch.
//
// Exit codes follow sysexits(3) as pipe(8) reads them: 0 done; 75 EX_TEMPFAIL for anything an operator or
// time can fix (disk full, permissions, configuration) so Postfix keeps the message; 67 EX_NOUSER for a
// recipient no service claims; 65 EX_DATAERR for a message over the size limit (retrying cannot help).
//
// autoreply and exec: see send_autoreply() and run_exec() below.
//
// dmarc-reports: classify the message (adapters/mime/report_parts.h), decompress and parse each aggregate
// report part within the [dmarc_reports] limits, then file the message unchanged into the Maildir: valid
// aggregate -> folder_new, unparseable or unsafe aggregate -> folder_invalid, failure report ->
// folder_failures, anything else
// -> INBOX.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/address.h"
#include "core/config.h"

namespace chainmail {

// sysexits(3) values, named here so the code says which one it means.
inline constexpr int kExitOk = 0;
inline constexpr int kExitDataErr = 65;
inline constexpr int kExitNoUser = 67;
inline constexpr int kExitTempFail = 75;

struct Envelope {
  std::string sender;
  std::string recipient;
  std::string original_recipient;
  std::string queue_id;
};

struct ServiceOutcome {
  int exit_code = kExitTempFail;
  std::string detail;  // for the log line: what was decided and where it went, or why not
  std::string folder;  // where the message was filed ("INBOX" or a folder name), empty when not filed
};

using ServiceHandler =
    std::function<ServiceOutcome(const Config&, const ServiceSpec&, const Envelope&, std::string_view)>;

struct ServiceKindEntry {
  std::string_view name;
  ServiceHandler handler;
};

// Every service kind this build can run.
std::span<const ServiceKindEntry> service_kinds();

// The [services] entry for a recipient, or nothing when no entry claims it.
std::optional<ServiceSpec> find_service(const Config& config, std::string_view recipient);

// The address a reply of `profile` comes from: autoreply.from when set; else the public address the sender
// wrote. The milter hands service mail to Postfix as <service>@routing.service_domain (a new recipient, so
// pipe(8)'s ${original_recipient} is that internal address too; the public one survives only as the DSN
// ORCPT, which pipe(8) cannot pass on), so an internal address is mapped back through [transport]: the one
// key that names this service. Then the original recipient, then the recipient. Nothing when no candidate is
// a valid address, or when several [transport] keys name the service (set autoreply.from then).
std::optional<Address> reply_address(const Config& config, const Config::Autoreply& profile,
                                     const Envelope& envelope);

// Looks the recipient up and runs its service. Never throws.
ServiceOutcome run_service(const Config& config, const Envelope& envelope, std::string_view message) noexcept;

// The dmarc-reports handler (exposed for tests).
ServiceOutcome file_dmarc_report(const Config& config, const ServiceSpec& spec, const Envelope& envelope,
                                 std::string_view message);

// The autoreply handler: decides (core/autoreply.h), takes the sender's slot (reply_state.h), builds the
// reply from the template or autoreply.command's output and sends it with sendmail -i -f <> -- SENDER.
// 0 when answered or rightly not answered; 75 when the state, the command or sendmail failed.
ServiceOutcome send_autoreply(const Config& config, const ServiceSpec& spec, const Envelope& envelope,
                              std::string_view message);

// The exec handler: the command with the message on stdin, a clean environment (PATH=/usr/bin:/bin, SENDER,
// RECIPIENT, ORIGINAL_RECIPIENT, QUEUE_ID), exec.timeout_s, exec.max_output_bytes.
ServiceOutcome run_exec(const Config& config, const ServiceSpec& spec, const Envelope& envelope,
                        std::string_view message);

// How an exec command's end maps to pipe(8)'s sysexits: exit 0 -> 0; exit 64..78 passes through (so 75
// retries); any other exit -> failure_exit (exec.failure_exit, default 75); timeout, too much output, a
// signal or a command that cannot start -> 75.
struct CommandResult;
int exec_exit_code(const CommandResult& result, int failure_exit);

// Attacker text made safe for one log line: control characters escaped, cut to `max` characters.
std::string log_safe(std::string_view text, std::size_t max = 200);

}  // namespace chainmail
