// service_mail.cc - see service_mail.h.
#include "service-mail/service_mail.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <ctime>
#include <random>

#include "adapters/maildir.h"
#include "adapters/mime/from_header.h"
#include "adapters/mime/report_archive.h"
#include "adapters/mime/report_parts.h"
#include "core/address.h"
#include "core/autoreply.h"
#include "core/dmarc_report.h"
#include "service-mail/reply_state.h"
#include "service-mail/subprocess.h"

namespace chainmail {
namespace {

// Checks each aggregate report part; returns an empty string when all are valid, else the first reason.
std::string check_aggregate(const Config& config, const ClassifiedMessage& classified) {
  const auto& r = config.dmarc_reports;
  ArchiveLimits archive;
  archive.max_bytes = static_cast<std::size_t>(r.max_decompressed_bytes);
  archive.max_members = static_cast<std::size_t>(r.max_zip_members);
  ReportParseLimits parse;
  parse.max_depth = static_cast<std::size_t>(r.max_xml_depth);
  for (const auto& part : classified.reports) {
    const auto xml = extract_report(part.data, archive);
    if (!xml.ok()) return part.filename + ": " + xml.error;
    const auto report = parse_aggregate_report(*xml.xml, parse);
    if (!report.ok()) return part.filename + ": " + report.error;
  }
  return {};
}

const std::array kKinds = {
    ServiceKindEntry{kServiceDmarcReports, file_dmarc_report},
    ServiceKindEntry{kServiceAutoreply, send_autoreply},
    ServiceKindEntry{kServiceExec, run_exec},
};

// A unique token for the reply's Message-ID: time, pid and 64 random bits.
std::string unique_token() {
  std::random_device rd;
  const std::uint64_t r = (static_cast<std::uint64_t>(rd()) << 32U) | rd();
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string out = std::to_string(std::time(nullptr)) + "." + std::to_string(::getpid()) + ".";
  for (int shift = 60; shift >= 0; shift -= 4) out += kHex[(r >> static_cast<unsigned>(shift)) & 15U];
  return out;
}

}  // namespace

std::span<const ServiceKindEntry> service_kinds() {
  return kKinds;
}

std::string log_safe(std::string_view text, std::size_t max) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string out;
  for (const char ch : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 32 || u == 127) {
      out += "\\x";
      out += kHex[u >> 4U];
      out += kHex[u & 15U];
    } else {
      out += ch;
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

std::optional<ServiceSpec> find_service(const Config& config, std::string_view recipient) {
  const auto at = recipient.rfind('@');
  const std::string_view local = at == std::string_view::npos ? recipient : recipient.substr(0, at);
  const auto detail = split_detail(local, config.routing.recipient_delimiter);
  const std::array<std::string_view, 3> keys = {recipient, local, detail.base};
  for (const auto key : keys) {
    if (key.empty()) continue;
    for (const auto& [name, values] : config.services) {
      if (values.size() == 1 && iequals(name, key)) return parse_service_spec(values.front());
    }
  }
  return std::nullopt;
}

ServiceOutcome file_dmarc_report(const Config& config, const ServiceSpec& spec, const Envelope& /*envelope*/,
                                 std::string_view message) {
  const auto& r = config.dmarc_reports;
  init_mime();
  const auto classified = classify_report_message(message);
  std::string folder;
  std::string detail = std::string(report_kind_name(classified.kind)) + " (" + classified.why + ")";
  switch (classified.kind) {
    case ReportKind::Failure:
      folder = r.folder_failures;
      break;
    case ReportKind::Neither:
      break;
    case ReportKind::Aggregate: {
      const auto why = check_aggregate(config, classified);
      folder = why.empty() ? r.folder_new : r.folder_invalid;
      if (!why.empty()) detail += ", invalid: " + why;
      break;
    }
  }
  const std::string maildir = spec.argument.empty() ? r.maildir : spec.argument;
  const auto delivery = deliver_to_maildir(maildir, folder, message);
  ServiceOutcome out;
  if (!delivery.ok) {
    out.exit_code = kExitTempFail;
    out.detail = detail + "; not filed: " + delivery.error;
    return out;
  }
  out.exit_code = kExitOk;
  out.folder = folder.empty() ? "INBOX" : folder;
  out.detail = detail + "; filed in " + out.folder;
  return out;
}

namespace {

std::vector<std::string> clean_environment(const Envelope& envelope) {
  return {"PATH=/usr/bin:/bin", "SENDER=" + envelope.sender, "RECIPIENT=" + envelope.recipient,
          "ORIGINAL_RECIPIENT=" + envelope.original_recipient, "QUEUE_ID=" + envelope.queue_id};
}

}  // namespace

int exec_exit_code(const CommandResult& result, int failure_exit) {
  if (result.end != CommandResult::End::Exited) return kExitTempFail;  // timeout, signal, overflow, not run
  if (result.status == 0) return kExitOk;
  if (result.status >= 64 && result.status <= 78) return result.status;  // sysexits pass through
  return failure_exit;
}

ServiceOutcome run_exec(const Config& config, const ServiceSpec& spec, const Envelope& envelope,
                        std::string_view message) {
  CommandSpec cmd;
  cmd.argv = exec_argv(config, spec);
  cmd.env = clean_environment(envelope);
  cmd.input = message;
  cmd.timeout = std::chrono::seconds(config.exec.timeout_s);
  cmd.max_output = static_cast<std::size_t>(config.exec.max_output_bytes);
  cmd.overflow_kills = true;
  if (cmd.argv.empty()) return {kExitTempFail, "exec: no command configured", {}};
  const auto result = run_command(cmd);
  ServiceOutcome out;
  out.exit_code = exec_exit_code(result, static_cast<int>(config.exec.failure_exit));
  out.detail = "exec " + cmd.argv.front() + ": " + result.describe();
  if (!result.output.empty()) out.detail += ", output: " + log_safe(result.output, 200);
  return out;
}

ServiceOutcome send_autoreply(const Config& config, const ServiceSpec& spec, const Envelope& envelope,
                              std::string_view message) {
  const auto* profile = autoreply_profile(config, spec);
  // validate() refuses such a configuration; a message that meets one anyway waits for the fix.
  if (profile == nullptr)
    return {kExitTempFail, "no autoreply profile [autoreply." + spec.argument + "]", {}};
  const auto& a = *profile;
  const auto headers = parse_header_fields(message);
  const auto decision = should_reply(config, envelope.sender, headers);
  if (!decision.reply) return {kExitOk, "no reply: " + decision.reason, {}};
  const auto from = reply_address(config, a, envelope);
  if (!from) {
    return {
        kExitTempFail,
        "no address to reply from: set autoreply.from (several [transport] keys name this service, or none "
        "is valid)",
        {}};
  }
  if (iequals(from->str(), decision.recipient->str())) return {kExitOk, "no reply: sender is ourselves", {}};

  // Per service address and sender: an answer from one service does not silence another.
  const std::string key = rate_key(*from, *decision.recipient);
  const auto slot = claim_reply_slot(a.state_dir, key, static_cast<std::time_t>(a.period_s),
                                     static_cast<std::size_t>(a.max_state_entries), std::time(nullptr));
  switch (slot.slot) {
    case ReplySlot::Limited:
      return {kExitOk, "no reply: already answered within autoreply.period_s", {}};
    case ReplySlot::Full:
      return {kExitOk, "no reply: autoreply.state_dir holds autoreply.max_state_entries senders", {}};
    case ReplySlot::Trouble:
      return {kExitTempFail, "autoreply state: " + slot.error, {}};
    case ReplySlot::Granted:
      break;
  }
  auto give_back = [&](std::string why) {
    release_reply_slot(a.state_dir, key);
    return ServiceOutcome{kExitTempFail, std::move(why), {}};
  };

  ReplyParts parts{*from, *decision.recipient, a.subject, a.body, unique_token(), std::time(nullptr)};
  if (!a.command.empty()) {
    CommandSpec cmd;
    cmd.argv = a.command;
    cmd.env = clean_environment(envelope);
    cmd.timeout = std::chrono::seconds(a.command_timeout_s);
    cmd.max_output = static_cast<std::size_t>(a.max_output_bytes);
    cmd.overflow_kills = false;  // a long fortune is cut, not an error
    const auto result = run_command(cmd);
    if (!result.ok()) return give_back("autoreply.command " + a.command.front() + ": " + result.describe());
    parts.body = result.output;
  }
  const std::string reply = build_reply(parts, headers);

  CommandSpec send;
  send.argv = {a.sendmail, "-i", "-f", "<>"};
  if (!a.sendmail_config.empty()) send.argv.insert(send.argv.end(), {"-C", a.sendmail_config});
  send.argv.insert(send.argv.end(), {"--", decision.recipient->str()});
  send.env = {"PATH=/usr/bin:/bin"};
  send.input = reply;
  send.timeout = std::chrono::seconds(a.sendmail_timeout_s);
  send.overflow_kills = false;
  const auto sent = run_command(send);
  if (!sent.ok()) {
    std::string why = "sendmail: " + sent.describe();
    if (!sent.output.empty()) why += ", output: " + log_safe(sent.output, 200);
    return give_back(why);
  }
  return {kExitOk, "replied to " + decision.recipient->str() + " from " + from->str(), {}};
}

namespace {

// The [transport] key that routes to `service` (a service name, the local part of an internal address), when
// exactly one does. `ambiguous` is set when several do.
std::optional<Address> public_address_of(const Config& config, std::string_view service, bool& ambiguous) {
  std::optional<Address> found;
  for (const auto& [key, values] : config.transport) {
    if (values.size() != 1 || !iequals(values.front(), service)) continue;
    auto a = parse_address(key).address;
    if (!a) continue;  // a bare local part names no single address
    if (found) {
      ambiguous = true;
      return std::nullopt;
    }
    found = std::move(a);
  }
  return found;
}

}  // namespace

std::optional<Address> reply_address(const Config& config, const Config::Autoreply& profile,
                                     const Envelope& envelope) {
  if (!profile.from.empty()) return parse_address(profile.from).address;
  for (const auto* text : {&envelope.original_recipient, &envelope.recipient}) {
    if (text->empty()) continue;
    auto a = parse_address(*text).address;
    if (!a) continue;
    if (!config.routing.service_domain.empty() && iequals(a->domain, config.routing.service_domain)) {
      bool ambiguous = false;
      const auto base = split_detail(a->local, config.routing.recipient_delimiter).base;
      if (auto pub = public_address_of(config, base, ambiguous)) return pub;
      if (ambiguous) return std::nullopt;
    }
    return a;
  }
  return std::nullopt;
}

ServiceOutcome run_service(const Config& config, const Envelope& envelope,
                           std::string_view message) noexcept {
  try {
    const auto spec = find_service(config, envelope.recipient);
    if (!spec) return {kExitNoUser, "no [services] entry for this recipient", {}};
    for (const auto& kind : service_kinds()) {
      if (kind.name == spec->kind) return kind.handler(config, *spec, envelope, message);
    }
    return {kExitTempFail, "service kind \"" + spec->kind + "\" is not available in this build", {}};
  } catch (const std::exception& e) {
    try {
      return {kExitTempFail, std::string("internal error: ") + e.what(), {}};
    } catch (...) {
      return {kExitTempFail, {}, {}};
    }
  } catch (...) {
    return {kExitTempFail, {}, {}};
  }
}

}  // namespace chainmail
