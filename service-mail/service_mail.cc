// service_mail.cc - see service_mail.h.
#include "service-mail/service_mail.h"

#include <array>

#include "adapters/maildir.h"
#include "adapters/mime/from_header.h"
#include "adapters/mime/report_archive.h"
#include "adapters/mime/report_parts.h"
#include "core/address.h"
#include "core/dmarc_report.h"

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
};

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
