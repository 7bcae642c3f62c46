// autoreply.h - the autoreply service's decisions, without I/O: may this message be answered, to whom, and
// the text of the answer.
//
// service-mail (service_mail.cc) reads the message, asks should_reply(), takes the per-sender slot in its
// state directory (rate_key() names it), builds the reply with build_reply() and hands it to sendmail with a
// null envelope sender, so that nothing ever answers an answer.
//
// Never answered (RFC 3834 section 2 and the usual vacation(1) rules): the null sender, an envelope sender
// that is not a valid address, MAILER-DAEMON and other role senders (postmaster, owner-*, *-request,
// *-owner, *-bounces, noreply, ...), our own hosted domains, mailing lists (any List-* header), Precedence
// bulk/junk/list, Auto-Submitted other than "no", X-Auto-Response-Suppress asking for no reply, and a header
// section too large or too malformed to judge.
//
// SECURITY: every input is attacker text. The recipient is the envelope sender re-serialised from
// parse_address(); the subject is reduced to printable ASCII and cut; Message-ID and References are kept only
// when they are well-formed msg-ids; so no CR, LF or control byte of the incoming message can reach a header
// of the reply. The header section read is bounded (kMaxHeaderBytes, kMaxHeaderFields).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/address.h"
#include "core/config.h"

namespace chainmail {

inline constexpr std::size_t kMaxHeaderBytes = std::size_t{256} * 1024;
inline constexpr std::size_t kMaxHeaderFields = 1000;
inline constexpr std::size_t kMaxReplySubject = 200;
inline constexpr std::size_t kMaxReferences = 10;
inline constexpr std::size_t kMaxMessageId = 250;

// The header fields of a message, unfolded (name as written, value without the leading blank).
struct HeaderFields {
  std::vector<std::pair<std::string, std::string>> fields;
  bool ok = true;  // false: the header section is over the limits or has a line that is not a field

  // The first field named `name` (case-insensitive), or nothing.
  std::optional<std::string_view> get(std::string_view name) const;
};
HeaderFields parse_header_fields(std::string_view message);

struct ReplyDecision {
  bool reply = false;
  std::string reason;                // why not (or "reply"), for the log line
  std::optional<Address> recipient;  // set when reply is true
};

// Whether the message may be answered at all (the rate limit is the caller's, it needs state).
ReplyDecision should_reply(const Config& config, std::string_view envelope_sender,
                           const HeaderFields& headers);

// True for the senders that are roles or robots rather than people (compared case-insensitively).
bool is_role_sender(std::string_view local_part);

// A well-formed msg-id ("<left@right>", printable ASCII, no blanks, bounded), or nothing.
std::optional<std::string> clean_msg_id(std::string_view text);

// Text for a header field: unfolded, control bytes and non-ASCII replaced, blanks collapsed, cut to `max`.
std::string clean_header_text(std::string_view text, std::size_t max);

// The name of the rate-limit file of one sender of one service address: a fixed-width hex digest of both
// addresses, lower-cased, so that no address can name a path.
std::string rate_key(const Address& service, const Address& sender);

struct ReplyParts {
  Address from;            // the service address
  Address to;              // the validated envelope sender
  std::string subject;     // autoreply.subject; "%s" is replaced by the incoming subject (cleaned)
  std::string body;        // template text or command output
  std::string message_id;  // a unique token; "<token@from-domain>" is made of it
  std::time_t date = 0;
};

// The whole reply (LF line ends, as sendmail -i takes it): From, To, Subject, Date, Message-ID, In-Reply-To,
// References, Auto-Submitted: auto-replied, MIME headers, then the body with NULs and CRs removed and lines
// over 998 octets broken.
std::string build_reply(const ReplyParts& parts, const HeaderFields& incoming);

}  // namespace chainmail
