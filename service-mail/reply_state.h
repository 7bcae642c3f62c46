// reply_state.h - the autoreply rate limit: one reply per sender per period, remembered in a directory.
//
// Each sender is one empty file in autoreply.state_dir, named by rate_key() (hex, so no address can name a
// path), whose mtime is the time of the last reply. Every decision takes an exclusive flock on the
// directory's ".lock" file, so concurrent deliveries (Postfix runs several pipe processes) agree: of N
// messages from one sender at once, exactly one is answered. The directory is bounded: when a new sender
// arrives, expired files are removed, and when max_entries unexpired senders remain, nobody new is answered
// (a flood of forged senders must not become a flood of replies).
//
// SECURITY: files are opened with O_NOFOLLOW and created 0600; the directory must belong to the service
// user (it is not created here).
//
// DIAGNOSTICS: Trouble carries the failing call and errno's text; the caller defers the message (75).
#pragma once

#include <cstddef>
#include <ctime>
#include <string>

namespace chainmail {

enum class ReplySlot { Granted, Limited, Full, Trouble };

struct ReplySlotResult {
  ReplySlot slot = ReplySlot::Trouble;
  std::string error;
};

ReplySlotResult claim_reply_slot(const std::string& dir, const std::string& key, std::time_t period_s,
                                 std::size_t max_entries, std::time_t now);

// Gives a granted slot back (the reply could not be sent, so the next message may try again).
void release_reply_slot(const std::string& dir, const std::string& key);

}  // namespace chainmail
