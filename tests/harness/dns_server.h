// dns_server.h: a real DNS server (unbound) on a private loopback port, answering authoritatively from test
// zones, owned by the test.
//
//   DnsServer dns;
//   dns.add_zone("pass.example");
//   dns.add_txt("pass.example", "v=spf1 ip4:127.0.0.1 -all");
//   dns.add_txt("sel._domainkey.pass.example", "v=DKIM1; k=rsa; p=" + base64_key);  // split into 255-octet
//   strings dns.add_record("mail.pass.example. 300 IN A 127.0.0.1"); dns.refuse("broken.example"); // REFUSED
//   below it: what a resolver sees as DNS trouble dns.start();                           // dns.resolver() is
//   "127.0.0.1@PORT" (chainmail.conf [dns] resolvers) dns.add_txt(...); dns.restart(); // new data is served
//   after a restart, on the same port
//
// Clients that are themselves unbound or libunbound answer special-use names (RFC 6761: .test, .invalid,
// .onion, ...) from their own default local zones and never forward them here: name test zones under
// .example or a real-looking TLD. Every name outside the zones is answered NXDOMAIN (local-zone "." static),
// so nothing ever leaves the machine and a name the test forgot reads as "does not exist", quickly. unbound
// runs with the iterator module only (no DNSSEC validation), `-d` in the foreground as a child Process,
// logging every query.
//
// DIAGNOSTICS: start() throws std::runtime_error with unbound-checkconf's output for a bad configuration, or
// the tail of the log when unbound exits or does not answer in time. add_txt()/add_record() throw
// std::invalid_argument for text unbound's configuration syntax cannot carry (a single quote, a newline).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "harness/process.h"
#include "harness/temp_dir.h"

namespace chainmail::harness {

class DnsServer {
 public:
  DnsServer();

  // A zone this server is authoritative for: names in it without data are NXDOMAIN. `zone` without the
  // trailing dot.
  void add_zone(std::string_view zone);
  // Queries for `zone` and everything below it are answered REFUSED.
  void refuse(std::string_view zone);
  // One resource record in zone-file syntax, owner name fully qualified: "mail.pass.example. 300 IN A
  // 127.0.0.1". Its zone must have been added.
  void add_record(std::string_view rr);
  // A TXT record at `name` (no trailing dot) whose text is `text`, split into character-strings of at most
  // 255 octets as RFC 7208 3.3 / RFC 6376 3.6.2.2 expect receivers to join them.
  void add_txt(std::string_view name, std::string_view text, std::uint32_t ttl = 300);

  void start();    // Writes unbound.conf and starts unbound on a new free port.
  void stop();     // SIGTERM, SIGKILL after 5 s; no-op when not running.
  void restart();  // stop(), then unbound again on the same port with the current data.
  bool running() { return process_.running(); }

  std::uint16_t port() const { return port_; }
  std::string resolver() const;  // "127.0.0.1@PORT", libunbound's forwarder syntax
  std::string address() const;   // "127.0.0.1:PORT"
  const std::filesystem::path& log_path() const { return log_path_; }
  const std::filesystem::path& config_path() const { return config_path_; }

 private:
  void write_config() const;
  void launch();

  TempDir dir_;
  std::filesystem::path config_path_;
  std::filesystem::path log_path_;
  std::vector<std::string> zone_lines_;  // local-zone: and local-data: lines, in the order given
  std::uint16_t port_ = 0;
  Process process_;
};

// `text` as the rdata of a TXT record: quoted character-strings of at most 255 octets each, with '"' and '\'
// escaped. Throws std::invalid_argument for a single quote or a control character.
std::string txt_rdata(std::string_view text);

}  // namespace chainmail::harness
