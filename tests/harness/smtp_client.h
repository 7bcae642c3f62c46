// smtp_client.h: send test mail over real SMTP and check DKIM signatures, through tests/harness/smtp_send.py
// (Python's smtplib and dkimpy, run with /usr/bin/python3).
//
//   SmtpSend send;
//   send.server = mta.smtp_server();
//   send.helo = "mail.pass.example";
//   send.from = "sender@pass.example";
//   send.to = {"devops@pydis.wtf"};
//   send.message = "From: ...\r\n...";
//   send.dkim = DkimSigner{key_pem, "pass.example", "sel"};   // optional: dkimpy signs before sending
//   const SmtpSession s = smtp_send(send);
//   EXPECT_EQ(s.code("rcpt"), 250) << s.transcript();
//   const std::string id = s.queue_id();                   // from "250 2.0.0 Ok: queued as ID"
//
//   dkim_verify(text, dns.address())   // exit 0 and "pass d=... s=..." when signature 0 verifies
//
// Every SMTP command is sent even after a rejection, so each step has a reply to check (a refused MAIL FROM
// makes the RCPT replies 503). DIAGNOSTICS: transcript() is every reply line, for failure messages.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/process.h"

namespace chainmail::harness {

struct DkimSigner {
  std::filesystem::path key_file;  // PEM private key (RSA or Ed25519)
  std::string domain;              // d=
  std::string selector;            // s=
};

struct SmtpSend {
  std::string server;  // "127.0.0.1:PORT"
  std::string helo = "client.chainmail.test";
  std::string from;
  std::vector<std::string> to;
  std::string message;  // Headers and body; line endings are made CRLF.
  std::optional<DkimSigner> dkim;
};

struct SmtpReply {
  std::string step;  // connect, ehlo, mail, rcpt, data, quit
  int code = 0;      // -1: the connection failed or was lost at this step
  std::string text;
};

struct SmtpSession {
  std::vector<SmtpReply> replies;
  RunResult run;

  // The code of the n-th reply of `step` (0-based); 0 when there is no such reply.
  int code(std::string_view step, std::size_t n = 0) const;
  std::string text(std::string_view step, std::size_t n = 0) const;
  // The queue id from the DATA reply ("250 2.0.0 Ok: queued as 4Xyz..."); empty when not accepted.
  std::string queue_id() const;
  std::string transcript() const;
};

std::filesystem::path smtp_send_script();  // source_dir()/tests/harness/smtp_send.py

SmtpSession smtp_send(const SmtpSend& send);

// dkimpy signs `message` as `signer` (the DKIM-Signature header is prepended). Throws std::runtime_error.
std::string dkim_sign(std::string_view message, const DkimSigner& signer);

// dkimpy verifies signature `index` of `message`, fetching keys from the DNS server at `dns`
// ("127.0.0.1:PORT"). exit_code 0 and out "pass d=D s=S" when it verifies; 1 and "fail REASON" otherwise.
RunResult dkim_verify(std::string_view message, std::string_view dns, int index = 0);

}  // namespace chainmail::harness
