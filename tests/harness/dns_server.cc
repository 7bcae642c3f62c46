// dns_server.cc: see dns_server.h.
#include "harness/dns_server.h"

#include <stdexcept>

#include "harness/files.h"
#include "harness/net.h"

namespace chainmail::harness {
namespace {

constexpr std::size_t kMaxCharacterString = 255;  // RFC 1035 3.3: one length octet

// unbound.conf quotes local-data with single quotes so that the record's own double quotes pass through.
void check_config_text(std::string_view text) {
  for (const char c : text) {
    if (c == '\'' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      throw std::invalid_argument("DnsServer: unbound.conf cannot carry this text: " + std::string(text));
    }
  }
}

std::string zone_name(std::string_view zone) {
  std::string name(zone);
  if (name.empty() || name.back() != '.') name += '.';
  check_config_text(name);
  return name;
}

}  // namespace

std::string txt_rdata(std::string_view text) {
  check_config_text(text);
  std::string out;
  do {
    const std::string_view chunk = text.substr(0, kMaxCharacterString);
    text.remove_prefix(chunk.size());
    if (!out.empty()) out += ' ';
    out += '"';
    for (const char c : chunk) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  } while (!text.empty());
  return out;
}

DnsServer::DnsServer()
    : dir_("dns"), config_path_(dir_.path() / "unbound.conf"), log_path_(dir_.path() / "unbound.log") {}

void DnsServer::add_zone(std::string_view zone) {
  zone_lines_.push_back("local-zone: \"" + zone_name(zone) + "\" static");
}

void DnsServer::refuse(std::string_view zone) {
  zone_lines_.push_back("local-zone: \"" + zone_name(zone) + "\" always_refuse");
}

void DnsServer::add_record(std::string_view rr) {
  check_config_text(rr);
  zone_lines_.push_back("local-data: '" + std::string(rr) + "'");
}

void DnsServer::add_txt(std::string_view name, std::string_view text, std::uint32_t ttl) {
  std::string rr = zone_name(name);
  rr += ' ';
  rr += std::to_string(ttl);
  rr += " IN TXT ";
  rr += txt_rdata(text);
  add_record(rr);
}

void DnsServer::write_config() const {
  // chroot "" and username "": unbound's Debian defaults would chroot to /etc/unbound and drop to the
  // unbound user, neither of which can read our temp folder. Only the iterator module: the test zones are
  // unsigned, and a validator without a trust anchor would only add work. Queries are logged so that a
  // failing test shows what was asked.
  std::string conf =
      "server:\n"
      "  interface: 127.0.0.1\n"
      "  port: " +
      std::to_string(port_) +
      "\n"
      "  do-ip6: no\n"
      "  do-daemonize: no\n"
      "  chroot: \"\"\n"
      "  username: \"\"\n"
      "  directory: \"" +
      dir_.path().string() +
      "\"\n"
      "  pidfile: \"\"\n"
      "  logfile: \"\"\n"
      "  use-syslog: no\n"
      "  log-queries: yes\n"
      "  verbosity: 1\n"
      "  num-threads: 1\n"
      "  module-config: \"iterator\"\n"
      "  access-control: 127.0.0.0/8 allow\n"
      "  do-not-query-localhost: yes\n"
      "  local-zone: \".\" static\n";
  for (const auto& line : zone_lines_) conf += "  " + line + "\n";
  conf += "remote-control:\n  control-enable: no\n";
  write_file(config_path_, conf);

  const RunResult check = run({"unbound-checkconf", config_path_.string()}, {}, std::chrono::seconds(10));
  if (check.exit_code != 0) {
    throw std::runtime_error("unbound-checkconf " + config_path_.string() + " failed:\n" + check.out +
                             check.err);
  }
}

void DnsServer::start() {
  stop();
  port_ = free_port();
  launch();
}

void DnsServer::launch() {
  write_config();
  process_ = Process({"unbound", "-d", "-c", config_path_.string()}, log_path_);
  // unbound answers over TCP as well as UDP (do-tcp defaults to yes), and opens both before serving.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!wait_for_port(port_, std::chrono::milliseconds(50))) {
    if (!process_.running()) {
      throw std::runtime_error("unbound exited at startup (exit " + std::to_string(process_.terminate()) +
                               "); log " + log_path_.string() + ":\n" + log_tail(log_path_));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      process_.terminate();
      throw std::runtime_error("unbound did not answer on " + address() + "; log " + log_path_.string() +
                               ":\n" + log_tail(log_path_));
    }
  }
}

void DnsServer::stop() {
  process_.terminate();
}

void DnsServer::restart() {
  if (port_ == 0) throw std::logic_error("DnsServer::restart before start");
  stop();
  launch();
}

std::string DnsServer::resolver() const {
  return "127.0.0.1@" + std::to_string(port_);
}

std::string DnsServer::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

}  // namespace chainmail::harness
