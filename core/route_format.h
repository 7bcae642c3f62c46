// route_format.h - how a RouteResult is shown to operators and answered to Postfix (pure; no I/O).
//
// SECURITY: inputs and directory values may carry anything; sanitize() turns control bytes into \xNN so
// they never reach a terminal, a log line or a socketmap reply raw.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/router.h"

namespace chainmail {

std::string sanitize(std::string_view s);

// Human-readable: the outcome, each target with the rules that led to it, then warnings.
std::string render_text(const RouteResult& r);

// The `chainmail route` exit status over several results: 78 configuration trouble, 75 temporary trouble,
// 1 some address not routed (unknown, not hosted, invalid), 0 all routed.
int route_exit_status(std::span<const RouteResult> results);

// The socketmap reply for map "route": "OK target,target", "NOTFOUND " or "TEMP reason".
std::string socketmap_reply(const RouteResult& r);

}  // namespace chainmail
