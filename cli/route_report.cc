#include "cli/route_report.h"

namespace chainmail {

nlohmann::json to_json(const RouteResult& r) {
  nlohmann::json j;
  // nlohmann::json rejects invalid UTF-8 when dumping; addresses here are ASCII-validated or sanitized.
  j["address"] = sanitize(r.input);
  j["outcome"] = outcome_name(r.outcome);
  if (!r.reason.empty()) j["reason"] = sanitize(r.reason);
  if (r.trouble) j["trouble"] = r.trouble->kind == Trouble::Kind::temporary ? "temporary" : "configuration";
  j["targets"] = nlohmann::json::array();
  for (const auto& t : r.targets) {
    nlohmann::json path = nlohmann::json::array();
    for (const auto& s : t.path) {
      nlohmann::json step = {{"rule", rule_name(s.rule)}, {"subject", sanitize(s.subject)}};
      if (!rule_letter(s.rule).empty()) step["letter"] = rule_letter(s.rule);
      if (!s.detail.empty()) step["detail"] = sanitize(s.detail);
      path.push_back(std::move(step));
    }
    j["targets"].push_back({{"kind", target_kind_name(t.kind)}, {"address", t.address}, {"path", path}});
  }
  j["warnings"] = nlohmann::json::array();
  for (const auto& w : r.warnings) j["warnings"].push_back(sanitize(w));
  return j;
}

}  // namespace chainmail
