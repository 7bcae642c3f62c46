// session.h - what chainmail-milter decides for one SMTP connection, independent of libmilter.
//
// libmilter's callbacks (main.cc) are thin shims that call these methods and translate the Reply; unit tests
// drive a Session directly with a fake Actions. Per message:
//
//   connect -> helo -> mail_from -> rcpt... -> header... -> end_of_headers -> body... -> end_of_message
//
// Inbound mail (a client that is neither in milter.trusted_networks, nor SASL-authenticated, nor sent by a
// daemon named in milter.signing_daemons) is validated: SPF for HELO and MAIL FROM at MAIL FROM, DKIM over
// the headers and body, DMARC at end of message; our Authentication-Results is inserted at the top and
// incoming ones that claim our authserv-id or do not parse are deleted. Outbound mail is not validated; it is
// DKIM-signed when its From domain has keys in [dkim.signing]. Every recipient on a hosted domain is routed
// at RCPT (unknown 550 5.1.1, directory trouble 451 4.3.0) and, at end of message, replaced by its targets,
// each added with ORCPT naming the address the client gave, so delivery, DSNs and the LMTP hook see it.
//
// Replies (RFC 3463 / RFC 7372 codes):
//   550 5.7.23  SPF fail of the HELO name or the MAIL FROM domain (spf.reject_*_fail)
//   451 4.7.24  SPF temperror (milter.tempfail_on_dns_error)
//   550 5.1.1   unknown recipient on a hosted domain        451 4.3.0  directory trouble
//   550 5.7.1   recipient on the mailbox or service domain from an inbound client (no bypassing the chain)
//   452 4.5.3   more than milter.max_recipients recipients
//   552 5.3.4   more than milter.max_headers header fields (at end of headers)
//   550 5.7.1   not exactly one From author (RFC 7489 6.6.1), or DMARC fail under p=reject
//   451 4.7.5   DMARC undecidable because of DNS trouble (milter.tempfail_on_dns_error)
//   quarantine  DMARC fail under p=quarantine: the message goes to Postfix's hold queue
//
// Mail submitted with sendmail(1) reaches the milter through cleanup(8), which emulates an SMTP session from
// localhost[127.0.0.1] and treats any reply to RCPT as a configuration error (the whole message would wait
// forever). Such a session comes from localhost[127.0.0.1] with {daemon_port} "0" (smtpd sends its real
// port; conf/postfix lists the macro, and without it every localhost client is treated so): its
// unknown recipients are left as they are (Postfix bounces them to the local sender), and directory trouble
// tempfails the message at end of data instead.
//
// SECURITY: everything from the client is untrusted and bounded (recipient and header counts; libmilter
// bounds sizes). Client text reaches the log only through untrusted(). Any exception escaping a step makes
// the shim tempfail the message: nothing is accepted unchecked.
// DIAGNOSTICS: one log line per message (queue id, client, each check, verdict, each recipient's route).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/dkim/dkim.h"
#include "adapters/dmarc/dmarc.h"
#include "adapters/spf/spf_checker.h"
#include "core/network.h"
#include "core/router.h"
#include "milter/log.h"
#include "milter/runtime.h"

namespace chainmail::milter {

// What the session asks of the MTA at end of message; libmilter's smfi_* in production. Each returns false
// when the MTA refused, which tempfails the message (a half-applied rewrite must not be delivered).
class Actions {
 public:
  virtual ~Actions() = default;
  virtual bool insert_header(int index, const std::string& name, const std::string& value) = 0;
  virtual bool delete_header(const std::string& name, int index) = 0;  // index: 1-based among `name` fields
  virtual bool add_recipient(const std::string& address, const std::string& esmtp_args) = 0;
  virtual bool delete_recipient(const std::string& address) = 0;
  virtual bool quarantine(const std::string& reason) = 0;
};

struct Reply {
  enum class Status { proceed, reject, tempfail };
  Status status = Status::proceed;
  std::string code, xcode, text;  // set for reject and tempfail

  static Reply ok() { return {}; }
  static Reply reject(std::string code, std::string xcode, std::string text) {
    return {Status::reject, std::move(code), std::move(xcode), std::move(text)};
  }
  static Reply tempfail(std::string code, std::string xcode, std::string text) {
    return {Status::tempfail, std::move(code), std::move(xcode), std::move(text)};
  }
};

struct MailMacros {
  std::string queue_id;     // {i}
  std::string auth_authen;  // {auth_authen}: set when the client authenticated
  std::string daemon_name;  // {daemon_name}
  std::string daemon_port;  // {daemon_port}: smtpd's listening port; "0" in cleanup's non-SMTP emulation
};

class Session {
 public:
  using RuntimeSource = std::function<std::shared_ptr<const Runtime>()>;

  // `current` returns the runtime for a new message (the one a reload installed last).
  Session(RuntimeSource current, const Log& log);

  Reply connect(std::string_view hostname, std::string_view address);
  Reply helo(std::string_view name);
  Reply mail_from(std::string_view sender, const std::vector<std::string>& esmtp_args,
                  const MailMacros& macros);
  Reply rcpt(std::string_view recipient, const std::vector<std::string>& esmtp_args);
  Reply header(std::string_view name, std::string_view value);
  Reply end_of_headers();
  Reply body(std::string_view chunk);
  Reply end_of_message(Actions& actions, std::string_view queue_id);
  // The message ended without end_of_message (RSET, lost connection, a reject): log it if it got far.
  void abort();

  bool inbound() const { return inbound_; }
  bool non_smtp() const { return non_smtp_; }

 private:
  struct Recipient {
    std::string address;  // as the client gave it, without <>
    std::vector<std::string> esmtp_args;
    std::vector<Target> targets;  // empty: not ours to route
  };
  struct Header {
    std::string name, value;
  };

  void reset_message();
  void log_message(std::string_view verdict);
  std::string client_text() const;
  std::string queue_label() const;  // the queue id, or NOQUEUE as Postfix logs before one exists
  Reply validate_at_end(Actions& actions, std::string& verdict);
  Reply apply_routes(Actions& actions);
  Reply sign(Actions& actions);

  RuntimeSource current_;
  const Log& log_;

  // Connection
  std::string hostname_, address_text_;
  std::optional<IpAddress> address_;
  std::string helo_;

  // Message
  std::shared_ptr<const Runtime> rt_;
  bool in_message_ = false;
  bool inbound_ = true;
  bool non_smtp_ = false;
  bool too_many_headers_ = false;  // sendmail(1)/pickup mail: cleanup cannot take a reply to RCPT
  std::string deferred_trouble_;   // non-SMTP recipient trouble, answered at end of message instead
  std::string queue_id_;
  std::string sender_;
  std::optional<spf::Verdict> spf_helo_, spf_mail_;
  std::vector<Recipient> recipients_;
  std::vector<Header> headers_;
  std::unique_ptr<dkim::Verifier> verifier_;
  std::vector<std::unique_ptr<dkim::Signer>> signers_;
  std::vector<std::string> signer_names_;  // "d=... s=..." per signer, for the log
  std::vector<dkim::Signature> dkim_results_;
  std::optional<dmarc::Evaluation> dmarc_;
  std::string from_domain_;
  std::string refused_;  // why the message was refused, for the log line
};

// RFC 3461 xtext, for ORCPT=rfc822;<address>.
std::string xtext(std::string_view text);

}  // namespace chainmail::milter
