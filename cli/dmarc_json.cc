// dmarc_json.cc - see dmarc_json.h.
#include "cli/dmarc_json.h"

namespace chainmail {

nlohmann::json dmarc_to_json(const std::vector<ReportRow>& reports, const std::vector<SourceRow>& sources,
                             DmarcView view, bool with_ptr, const DmarcTotals& totals) {
  // Attacker text may not be valid UTF-8: dump() must replace, not throw; see the caller's dump call.
  nlohmann::json out = nlohmann::json::object();
  if (view != DmarcView::Sources) {
    auto& arr = out["reports"] = nlohmann::json::array();
    for (const auto& r : reports) {
      arr.push_back({{"org", r.org_name},
                     {"email", r.email},
                     {"report_id", r.report_id},
                     {"begin", r.begin},
                     {"end", r.end},
                     {"begin_utc", format_time(r.begin)},
                     {"end_utc", format_time(r.end)},
                     {"domain", r.domain},
                     {"policy", r.policy},
                     {"messages", r.messages},
                     {"dmarc_pass", r.dmarc_pass},
                     {"dmarc_fail", r.dmarc_fail},
                     {"dkim_pass", r.dkim_pass},
                     {"dkim_fail", r.dkim_fail},
                     {"spf_pass", r.spf_pass},
                     {"spf_fail", r.spf_fail}});
    }
  }
  if (view != DmarcView::Reports) {
    auto& arr = out["sources"] = nlohmann::json::array();
    for (const auto& s : sources) {
      nlohmann::json j = {{"source_ip", s.key->source_ip},
                          {"header_from", s.key->header_from},
                          {"disposition", s.key->disposition},
                          {"dkim", s.key->dkim},
                          {"spf", s.key->spf},
                          {"messages", s.messages},
                          {"reports", s.reports}};
      if (with_ptr) j["ptr"] = s.ptr;
      arr.push_back(std::move(j));
    }
  }
  out["totals"] = {{"reports", totals.reports},
                   {"messages", totals.messages},
                   {"duplicates", totals.duplicates},
                   {"filtered", totals.filtered},
                   {"bad", totals.bad}};
  return out;
}

}  // namespace chainmail
