// dmarc_json.h - the JSON form of `chainmail dmarc --json` (nlohmann-json).
//
// Shape: {"reports": [{org, email, report_id, begin, end, domain, policy, messages, dmarc_pass, dmarc_fail,
// dkim_pass, dkim_fail, spf_pass, spf_fail}], "sources": [{source_ip, ptr?, header_from, disposition, dkim,
// spf, messages, reports}], "totals": {reports, messages, duplicates, filtered, bad}}. begin and end are
// seconds since the epoch (numbers) and also given as "begin_utc"/"end_utc" text. "ptr" is present only
// with --resolve. A view leaves the other array out.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/dmarc_summary.h"

namespace chainmail {

struct DmarcTotals {
  std::uint64_t reports = 0;
  std::uint64_t messages = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t filtered = 0;
  std::uint64_t bad = 0;
};

nlohmann::json dmarc_to_json(const std::vector<ReportRow>& reports, const std::vector<SourceRow>& sources,
                             DmarcView view, bool with_ptr, const DmarcTotals& totals);

}  // namespace chainmail
