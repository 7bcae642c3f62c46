// route_report.h - the JSON form of a RouteResult (`chainmail route --json`).
#pragma once

#include <nlohmann/json.hpp>

#include "core/route_format.h"
#include "core/router.h"

namespace chainmail {

nlohmann::json to_json(const RouteResult& r);

}  // namespace chainmail
