// delivery.h - what the Dovecot LMTP hook (dovecot-plugin/lmtp) decides for one delivered copy, in pure C++.
//
// Given how the original recipient routes (router.h, Explain::yes) and the mailbox being delivered to
// (uid@routing.mailbox_domain), find_via() says which group or alias led there: the outermost group or alias
// rule on the target's path (mail to postmaster@ -> alias postmaster -> group devops -> alice is filed under
// "postmaster", the address the sender used). folder_for() turns that into a folder name through
// lmtp.folder_template, and trace_value() spells out the trace header (lmtp.trace_header):
//
//   devops@pydis.wtf -> group devops -> alice
//   postmaster@pydis.com -> alias postmaster -> alice
//   alice@pydis.wtf -> user -> alice           (no group or alias on the way)
//
// SECURITY: group names come from the directory, alias names from config, the original recipient from the
// SMTP envelope (ORCPT): none is trusted. sanitize_folder_name() accepts only a plain, short, printable-ASCII
// name that cannot name another mailbox or escape the mail store: no '/', '\\', '.', (Maildir++'s hierarchy
// separator, so also no "..", no leading dot), no control characters, no IMAP wildcards ('%', '*'), no '&'
// (modified UTF-7), no '~' (home), no quotes, nothing beyond lmtp.max_folder_length; anything else means
// INBOX. trace_value() keeps header text on one line and bounded (kMaxTraceOriginal).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "config.h"
#include "router.h"

namespace chainmail {

enum class ViaKind { user, group, alias };
std::string_view via_kind_name(ViaKind k);  // "user", "group", "alias"

struct Via {
  ViaKind kind = ViaKind::user;
  std::string name;  // group or alias name (the local part, detail removed); empty for user
};

// Which rule led `route` (the original recipient's routing) to the mailbox `mailbox_user`@`mailbox_domain`.
// Targets are compared by local part without the detail (`delimiters`, routing.recipient_delimiter), case-
// insensitively. nullopt: the route does not reach this mailbox (not routed, or the ORCPT names someone
// else), so the ORCPT must not decide anything.
std::optional<Via> find_via(const RouteResult& route, std::string_view mailbox_user,
                            std::string_view mailbox_domain, std::string_view delimiters);

// `name` when it is safe as a folder name (see SECURITY), else nullopt.
std::optional<std::string> sanitize_folder_name(std::string_view name, std::size_t max_length);

inline constexpr std::string_view kInbox = "INBOX";

// The folder for a copy that came `via`: INBOX for a direct delivery, an empty template, a name that fails
// sanitize_folder_name() or a result longer than max_folder_length; else the template with %n replaced by the
// name (%% is a '%'). The template itself is the operator's and is not sanitised (it may hold a hierarchy).
std::string folder_for(const Via& via, const Config::Lmtp& lmtp);

inline constexpr std::size_t kMaxTraceOriginal = 320;

// The trace header's value: "<original> -> <rule> [<name>] -> <mailbox_user>". Control characters in
// `original` become '?', and it is cut to kMaxTraceOriginal bytes.
std::string trace_value(std::string_view original, const Via& via, std::string_view mailbox_user);

}  // namespace chainmail
