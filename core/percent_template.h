// percent_template.h - the one %-placeholder expander behind chainmail.conf's templates (LDAP filters,
// login filters, userdb paths).
//
//   expand_percent("(uid=%u)", [&](char c) -> std::optional<std::string> { ... });
//
// Each "%X" is replaced by value(X); when value(X) is nullopt the "%X" stays as written, so a template
// with an unknown placeholder shows it rather than losing it. "%%" is one "%", and a lone "%" at the end
// stays. The caller's value() does any escaping its placeholders need.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace chainmail {

template <class Value>
std::string expand_percent(std::string_view tmpl, Value&& value) {
  std::string out;
  out.reserve(tmpl.size() + 32);
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '%' || i + 1 == tmpl.size()) {
      out += tmpl[i];
      continue;
    }
    const char name = tmpl[++i];
    if (name == '%') {
      out += '%';
    } else if (std::optional<std::string> v = value(name)) {
      out += *v;
    } else {
      out += '%';
      out += name;
    }
  }
  return out;
}

}  // namespace chainmail
