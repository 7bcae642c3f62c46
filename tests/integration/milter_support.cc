// milter_support.cc: see milter_support.h.
#include "milter_support.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <ctime>
#include <future>
#include <iomanip>
#include <locale>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/address.h"  // iequals
#include "harness/files.h"
#include "harness/net.h"
#include "harness/paths.h"
#include "integration_support.h"

namespace chainmail::integration {
namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return std::string(s);
}

std::string rfc5322_date() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::ostringstream out;
  out.imbue(std::locale::classic());  // English day and month names whatever the environment says
  out << std::put_time(&tm, "%a, %d %b %Y %H:%M:%S +0000");
  return out.str();
}

void publish_sender_domain(harness::DnsServer& dns, std::string_view domain, std::string_view spf,
                           std::string_view dmarc) {
  dns.add_zone(domain);
  dns.add_txt(domain, spf);
  dns.add_txt("_dmarc." + std::string(domain), dmarc);
}

void publish_key(harness::DnsServer& dns, const DkimKey& key) {
  dns.add_txt(key.dns_name(), key.dns_text());
}

std::string section_lines(const std::map<std::string, std::string>& extra, const std::string& section) {
  const auto it = extra.find(section);
  return it == extra.end() ? std::string() : it->second + "\n";
}

}  // namespace

DkimKey make_dkim_key(const std::filesystem::path& dir, std::string_view algorithm, std::string_view domain,
                      std::string_view selector) {
  DkimKey key;
  key.algorithm = std::string(algorithm);
  key.domain = std::string(domain);
  key.selector = std::string(selector);
  key.private_pem = dir / (key.domain + "." + key.selector + ".pem");
  std::vector<std::string> gen = {"openssl", "genpkey", "-out", key.private_pem.string()};
  if (algorithm == "rsa") {
    gen.insert(gen.end(), {"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"});
  } else if (algorithm == "ed25519") {
    gen.insert(gen.end(), {"-algorithm", "ED25519"});
  } else {
    throw std::invalid_argument("make_dkim_key: unknown algorithm " + key.algorithm);
  }
  harness::RunResult r = harness::run(gen);
  if (r.exit_code != 0) throw std::runtime_error("openssl genpkey failed: " + r.err);
  // RFC 6376 3.6.1: p= is the base64 of the DER SubjectPublicKeyInfo for RSA; RFC 8463 3: the raw 32-octet
  // key for Ed25519, which is the last 32 octets of its 44-octet SubjectPublicKeyInfo.
  const std::string tail = algorithm == "ed25519" ? " | tail -c 32" : "";
  r = harness::run({"sh", "-c", "openssl pkey -in \"$1\" -pubout -outform DER" + tail + " | base64 -w0", "sh",
                    key.private_pem.string()});
  if (r.exit_code != 0 || r.out.empty()) throw std::runtime_error("openssl pkey -pubout failed: " + r.err);
  key.public_base64 = trim(r.out);
  return key;
}

std::string make_message(const MessageSpec& spec) {
  static std::atomic<unsigned> counter{0};
  const std::string domain = spec.from.substr(spec.from.rfind('@') + 1);
  std::string message = "From: " + spec.from + "\r\n";
  message += "To: " + spec.to + "\r\n";
  message += "Subject: " + spec.subject + "\r\n";
  message += "Date: " + rfc5322_date() + "\r\n";
  message += "Message-ID: <" + std::to_string(::getpid()) + "." + std::to_string(std::time(nullptr)) + "." +
             std::to_string(counter++) + "@" + domain + ">\r\n";
  for (const auto& [name, value] : spec.extra_headers) message += name + ": " + value + "\r\n";
  message += "\r\n";
  message += spec.body;
  return message;
}

std::vector<std::pair<std::string, std::string>> header_fields(std::string_view message) {
  std::vector<std::pair<std::string, std::string>> fields;
  while (!message.empty()) {
    std::size_t end = message.find('\n');
    std::string_view line = message.substr(0, end);
    message.remove_prefix(end == std::string_view::npos ? message.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // End of the header.
    if ((line.front() == ' ' || line.front() == '\t') && !fields.empty()) {
      fields.back().second += " " + trim(line);  // Unfold (RFC 5322 2.2.3), one space for the fold.
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    fields.emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
  return fields;
}

std::vector<std::string> header_values(std::string_view message, std::string_view name) {
  std::vector<std::string> out;
  for (auto& [field, value] : header_fields(message)) {
    if (iequals(field, name)) out.push_back(value);
  }
  return out;
}

std::vector<std::string> authentication_results(std::string_view message, std::string_view authserv_id) {
  std::vector<std::string> out;
  for (auto& value : header_values(message, "Authentication-Results")) {
    const std::size_t semicolon = value.find(';');
    const std::string id = trim(std::string_view(value).substr(0, semicolon));
    if (iequals(id, authserv_id)) out.push_back(value);
  }
  return out;
}

std::optional<harness::QueuedMessage> wait_for_recipients(const harness::Mta& mta, const std::string& id,
                                                          std::vector<std::string> recipients,
                                                          std::chrono::milliseconds timeout) {
  std::sort(recipients.begin(), recipients.end());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::optional<harness::QueuedMessage> queued = mta.queued(id);
    if (queued) {
      std::vector<std::string> left = queued->recipients;
      std::sort(left.begin(), left.end());
      if (left == recipients) return queued;
    }
    if (std::chrono::steady_clock::now() >= deadline) return queued;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string milter_config(const std::string& ldap_uri, const std::string& dns_resolver,
                          std::uint16_t socketmap_port, const std::vector<DkimKey>& signing_keys,
                          const std::map<std::string, std::string>& extra) {
  std::string c;
  c += "# chainmail.conf written by tests/integration/milter_support.cc\n";
  c += "[domains]\n"
       "main = \"pydis.wtf\"\n"
       "aliases = [\"pydis.com\", \"pythondiscord.com\", \"owlcorp.uk\"]\n"
       "internal = \"int.pydis.wtf\"\n" +
       section_lines(extra, "[domains]");
  c += "\n[routing]\n"
       "recipient_delimiter = \"+\"\n"
       "mailbox_domain = \"localhost\"\n"
       "service_domain = \"service-mail.localhost\"\n" +
       section_lines(extra, "[routing]");
  c += "\n[transport]\n"
       "\"fortune@int.pydis.wtf\" = \"fortune\"\n"
       "\"fredrick@pydis.wtf\" = \"fredrick\"\n" +
       section_lines(extra, "[transport]");
  c += "\n[aliases]\n"
       "postmaster = \"devops\"\n"
       "abuse = \"devops\"\n"
       "staff = \"alice\"\n"
       "security = [\"devops\", \"security-reports@example.org\"]\n" +
       section_lines(extra, "[aliases]");
  c += "\n[directory]\n"
       "uris = [" +
       toml_string(ldap_uri) +
       "]\n"
       "base_dn = " +
       toml_string(std::string(harness::demo::kBase)) +
       "\n"
       "bind_dn = " +
       toml_string(std::string(harness::demo::kBindDn)) +
       "\n"
       "bind_password = " +
       toml_string(std::string(harness::demo::kBindPassword)) +
       "\n"
       "connect_timeout_ms = 500\n"
       "search_timeout_ms = 1000\n" +
       section_lines(extra, "[directory]");
  // No cache: every routing decision reaches slapd, so a stopped slapd shows at the next RCPT.
  c += "\n[cache]\nmax_entries = 0\n" + section_lines(extra, "[cache]");
  c += "\n[socketmap]\nlisten = " + toml_string("inet:127.0.0.1:" + std::to_string(socketmap_port)) + "\n" +
       section_lines(extra, "[socketmap]");
  // The tests connect from 127.0.0.1 and want it validated: nothing is trusted.
  c += "\n[milter]\nlog = \"stderr\"\ntrusted_networks = []\n" + section_lines(extra, "[milter]");
  c += "\n[dns]\nresolvers = [" + toml_string(dns_resolver) + "]\ntimeout_ms = 2000\n" +
       section_lines(extra, "[dns]");
  c += "\n[spf]\n" + section_lines(extra, "[spf]");
  c += "\n[dkim]\n" + section_lines(extra, "[dkim]");
  std::string keys;
  for (const DkimKey& key : signing_keys) {
    keys += (keys.empty() ? "" : ", ") + toml_string(key.selector + ":" + key.private_pem.string());
  }
  c += "\n[dkim.signing]\n" + toml_string(signing_keys.at(0).domain) + " = [" + keys + "]\n" +
       section_lines(extra, "[dkim.signing]");
  c += "\n[dmarc]\n" + section_lines(extra, "[dmarc]");
  return c;
}

MailStack::MailStack() = default;

MailStack::~MailStack() {
  stop();
}

void MailStack::start(const MailStackOptions& options) {
  with_milter = options.milter;
  slapd.start();

  // RSA key generation takes most of a second each: make them at once.
  auto signing = std::async(std::launch::async, [this] {
    return make_dkim_key(dir.path(), "rsa", "pydis.wtf", zones::kSigningSelector);
  });
  pass_key = make_dkim_key(dir.path(), "rsa", zones::kPass, zones::kSelector);
  signing_key_ed25519 = make_dkim_key(dir.path(), "ed25519", "pydis.wtf", zones::kEd25519Selector);
  signing_key = signing.get();

  dns.add_zone(zones::kHelo);
  dns.add_txt(zones::kHelo, "v=spf1 ip4:127.0.0.1 -all");
  dns.add_record(std::string(zones::kHelo) + ". 300 IN A 127.0.0.1");
  dns.add_zone(zones::kHeloFail);
  dns.add_txt(zones::kHeloFail, "v=spf1 -all");
  publish_sender_domain(dns, zones::kPass, "v=spf1 ip4:127.0.0.1 -all", "v=DMARC1; p=reject");
  publish_key(dns, pass_key);
  publish_sender_domain(dns, zones::kReject, "v=spf1 -all", "v=DMARC1; p=reject");
  publish_sender_domain(dns, zones::kQuarantine, "v=spf1 -all", "v=DMARC1; p=quarantine");
  publish_sender_domain(dns, zones::kNone, "v=spf1 -all", "v=DMARC1; p=none");
  publish_sender_domain(dns, zones::kSpfFail, "v=spf1 ip4:192.0.2.1 -all", "v=DMARC1; p=none");
  publish_sender_domain(dns, "pydis.wtf", "v=spf1 ip4:127.0.0.1 -all", "v=DMARC1; p=reject");
  publish_key(dns, signing_key);
  publish_key(dns, signing_key_ed25519);
  dns.refuse(zones::kBroken);
  dns.start();

  if (options.mta) dovecot.start();

  socketmap_port = harness::free_port();
  config = dir.path() / "chainmail.conf";
  harness::write_file(config, milter_config(slapd.uri(), dns.resolver(), socketmap_port,
                                            {signing_key, signing_key_ed25519}, options.extra_config));

  harness::MtaOptions mta_options;
  mta_options.socketmap = "inet:127.0.0.1:" + std::to_string(socketmap_port);
  mta_options.lmtp_socket = dovecot.lmtp_socket();
  if (with_milter) {
    milter.start(config, {socketmap_port});
    mta_options.milter = milter.postfix_socket();
    if (!options.mta) return;
  } else {
    socketmap = harness::Process({chainmail_bin().string(), "socketmap", "--config", config.string(),
                                  "--listen", "inet:127.0.0.1:" + std::to_string(socketmap_port)},
                                 dir.path() / "socketmap.log");
    if (!harness::wait_for_port(socketmap_port, std::chrono::seconds(10))) {
      throw std::runtime_error("chainmail socketmap did not listen:\n" +
                               harness::log_tail(dir.path() / "socketmap.log"));
    }
    // Without the milter nothing rewrites recipients in smtpd's path: give it Postfix's address mappings
    // back.
    mta_options.master_cf.push_back("@SMTPD@/inet/receive_override_options=no_unknown_recipient_checks");
  }
  mta.start(mta_options);
}

void MailStack::stop() {
  mta.stop();
  milter.stop(std::chrono::seconds(1));
  socketmap.terminate();
  dovecot.stop();
  dns.stop();
  slapd.stop();
}

harness::SmtpSend MailStack::inbound(std::string from, std::vector<std::string> to,
                                     std::string message) const {
  harness::SmtpSend send;
  send.server = mta.smtp_server();
  send.helo = std::string(zones::kHelo);
  send.from = std::move(from);
  send.to = std::move(to);
  send.message = std::move(message);
  return send;
}

harness::SmtpSend MailStack::submission(std::string from, std::vector<std::string> to,
                                        std::string message) const {
  harness::SmtpSend send = inbound(std::move(from), std::move(to), std::move(message));
  send.server = mta.submission_server();
  return send;
}

std::string MailStack::logs() const {
  std::string out;
  out += "--- postfix " + mta.maillog_path().string() + "\n" + harness::log_tail(mta.maillog_path(), 3000);
  if (with_milter)
    out += "\n--- milter " + milter.log_path().string() + "\n" + harness::log_tail(milter.log_path(), 3000);
  out += "\n--- dovecot " + dovecot.log_path().string() + "\n" + harness::log_tail(dovecot.log_path(), 1500);
  out += "\n--- unbound " + dns.log_path().string() + "\n" + harness::log_tail(dns.log_path(), 1500);
  return out;
}

}  // namespace chainmail::integration
