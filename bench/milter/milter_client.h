// milter_client.h - the MTA side of the Sendmail milter protocol, version 6, spoken as Postfix 3.7 speaks it
// (src/milter/milter8.c): replays one SMTP session through one milter or a chain and says what became of each
// message. bench/milter/milter_load drives it from many threads; the protocol lives here so the load driver
// is only about load and measurement.
//
//   chainmail::bench::Session s = ...;            // client, HELO, messages (envelope, headers, body)
//   std::mt19937_64 rng(seed);                    // one per thread: the client port and the queue ids
//   std::vector<chainmail::bench::Outcome> out;
//   run_session(s, {"unix:/run/a.sock", "inet:127.0.0.1:8893"}, rng, out);  // chain order
//
// What Postfix does and this client mimics (the peers' costs depend on it):
// - One milter connection per SMTP session and milter (libmilter closes it at QUIT: milter8.c defines
//   LIBMILTER_AUTO_DISCONNECT): connect, SMFIC_OPTNEG offering version 6, actions ADDHDRS|CHGBODY|ADDRCPT|
//   DELRCPT|CHGHDRS|QUARANTINE|CHGFROM|ADDRCPT_PAR|SETSYMLIST and the full version-6 event mask, CONNECT,
//   HELO, then per message MAIL, RCPT..., DATA, HEADER..., EOH, BODY chunks of at most 65535 bytes, EOM, and
//   SMFIC_ABORT after the transaction (smtpd's mail_reset); SMFIC_QUIT and close at the end of the session.
//   Events the milter negotiated away are skipped, their macros still sent; no reply is awaited where the
//   milter negotiated SMFIP_NR_*. Headers go without Postfix's own Received: header, one leading space eaten
//   unless SMFIP_HDR_LEADSPC, continuation lines joined by "\n"; the body with CRLF line ends.
// - Macros (SMFIC_MACRO) before each event, Postfix's defaults that have a value here: connect j,
//   {daemon_name}, {daemon_addr}, v, _; mail {mail_addr}; rcpt {rcpt_addr}, {rcpt_host}, {rcpt_mailer}; from
//   DATA on i (the queue id: smtpd_delay_open_until_valid_rcpt opens the queue file after the first RCPT).
// - A chain (smtpd_milters = a, b): envelope events go to each milter in turn (a reject stops the event);
//   the content goes to the first milter completely, its header edits are applied, then to the next, which
//   sees them (cleanup(8) re-reads the queue file per milter). That is how OpenDMARC reads OpenDKIM's
//   verdict.
// - Socket options: NONE set. Postfix does not set TCP_NODELAY on milter sockets; over TCP it only grows its
//   VSTREAM buffer to 4 x TCP_MAXSEG (vstream_tweak_tcp). Writes are buffered (4096 bytes over unix sockets,
//   as VSTREAM_BUFSIZE) and flushed when the buffer is full or before reading a reply, so macros, an event
//   and any unanswered events before it (ABORT, headers under SMFIP_NR_HDR) leave in one write. A milter that
//   answers at end of message with several small writes meets Nagle's algorithm and our delayed ACK over TCP,
//   exactly as it does behind Postfix.
//
// DIAGNOSTICS: a milter that cannot be reached, breaks the protocol, asks for what Postfix does not offer or
// stays silent for 300 s (milter_content_timeout) ends the session with ProtocolError. SECURITY: a benchmark
// client for loopback daemons the caller started; replies are bounded (64 MiB per packet).
#pragma once

#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace chainmail::bench {

// One transaction as Postfix holds it after DATA.
struct Message {
  std::string id;         // the caller's name for it, copied to its Outcome
  std::string mail_from;  // without angle brackets; empty for the null sender
  std::vector<std::string> rcpts;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value as Postfix holds it
  std::string body;                                          // CRLF line ends
  std::size_t size = 0;                                      // as received, for MAIL FROM's SIZE=
};

// One SMTP session: the client as smtpd saw it, then its transactions in order.
struct Session {
  std::string client_addr;  // IPv4 text
  std::string client_name;
  std::string helo;
  std::vector<Message> messages;
};

// What a message's end-of-message replies asked for, summed over the chain (for the verdict check: the
// header edits themselves are applied inside, before the next milter sees the message).
struct Edits {
  std::vector<std::string> added_headers;  // "milterN add|insert|change Name:value", in the order received
  std::vector<std::string> rcpt_added;     // as the milter sent them (SMFIR_ADDRCPT, SMFIR_ADDRCPT_PAR)
  std::vector<std::string> rcpt_deleted;
  std::string quarantine;  // "milterN reason" of the last SMFIR_QUARANTINE
  std::string new_from;
  bool body_replaced = false;
};

// What became of one message.
struct Outcome {
  std::string id;
  std::string disposition = "accept";  // accept, reject, tempfail, discard, quarantine, error
  std::string stage = "eom";           // the event whose reply decided: connect, helo, mail, rcpt, data, ...
  std::string decided_by;              // "milterN", N its 1-based place in the chain
  std::string code;                    // the SMTP reply Postfix would give, for a reject or tempfail
  Edits edits;
  // Latency, measured here because only the client sees the events: from the message's MAIL event (for a
  // session's first message, from the connect) to its last reply.
  double ms = 0;
};

// A milter that cannot be reached or breaks the protocol.
struct ProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Replays `s` through `milters` (unix:PATH or inet:HOST:PORT, in chain order), appending one Outcome per
// message to `out` as each finishes. Throws ProtocolError when a milter fails; `out` then holds the messages
// finished before, so the caller can count the rest as errors. `rng` draws the client port and the queue ids,
// in a fixed order, so a seeded generator replays the same session bytes.
void run_session(const Session& s, const std::vector<std::string>& milters, std::mt19937_64& rng,
                 std::vector<Outcome>& out);

}  // namespace chainmail::bench
