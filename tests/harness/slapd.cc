// slapd.cc: see slapd.h.
#include "harness/slapd.h"

#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "harness/net.h"
#include "harness/paths.h"

namespace chainmail::harness {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The last `max` bytes of a log, for error messages (slapd -d stats is chatty; the error is at the end).
std::string log_tail(const std::filesystem::path& path, std::size_t max = 4000) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return text.size() > max ? "..." + text.substr(text.size() - max) : text;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
}

std::string conf_quoted(const std::filesystem::path& path) {
  return "\"" + std::filesystem::absolute(path).string() + "\"";
}

// TLS directives belong to the global section: insert them before the first `database` line.
void add_tls(std::string& conf, const SlapdTls& tls) {
  const auto database_at = [&conf](std::size_t at) {
    return conf.compare(at, 9, "database ") == 0 || conf.compare(at, 9, "database\t") == 0;
  };
  std::size_t pos = 0;
  while (pos < conf.size() && !database_at(pos)) {
    pos = conf.find('\n', pos);
    pos = pos == std::string::npos ? conf.size() : pos + 1;
  }
  if (pos >= conf.size()) {
    throw std::runtime_error("slapd.conf.in: no `database` line to put the TLS settings before");
  }
  std::string lines = "# TLS (harness::SlapdTls)\n";
  if (!tls.ca_file.empty()) lines += "TLSCACertificateFile    " + conf_quoted(tls.ca_file) + "\n";
  lines += "TLSCertificateFile      " + conf_quoted(tls.cert_file) + "\n";
  lines += "TLSCertificateKeyFile   " + conf_quoted(tls.key_file) + "\n\n";
  conf.insert(pos, lines);
}

}  // namespace

std::filesystem::path ldap_conf_dir() {
  return source_dir() / "conf" / "ldap";
}

std::filesystem::path demo_ldif() {
  return ldap_conf_dir() / "demo.ldif";
}

Slapd::Slapd()
    : dir_("slapd"), config_path_(dir_.path() / "slapd.conf"), log_path_(dir_.path() / "slapd.log") {}

void Slapd::start(const std::filesystem::path& ldif, const SlapdOptions& options) {
  stop();
  options_ = options;
  const std::filesystem::path conf_dir =
      std::filesystem::absolute(options_.conf_dir.empty() ? ldap_conf_dir() : options_.conf_dir);

  // A fresh database each time: slapadd into a used one would fail on duplicate entries.
  const std::filesystem::path db_dir = dir_.path() / "db";
  std::filesystem::remove_all(db_dir);
  std::filesystem::create_directory(db_dir);

  std::string conf = read_file(conf_dir / "slapd.conf.in");
  replace_all(conf, "@SCHEMA_DIR@", conf_dir.string());
  replace_all(conf, "@DB_DIR@", db_dir.string());
  // A placeholder this code does not know would reach slapd verbatim and fail obscurely; fail here instead.
  if (std::smatch left; std::regex_search(conf, left, std::regex("@[A-Z_]+@"))) {
    throw std::runtime_error("slapd.conf.in: unknown placeholder " + left.str());
  }
  if (options_.tls) add_tls(conf, *options_.tls);
  std::ofstream(config_path_, std::ios::trunc) << conf;

  const RunResult added =
      run({"slapadd", "-f", config_path_.string(), "-l", std::filesystem::absolute(ldif).string()}, {},
          std::chrono::seconds(30));
  if (added.exit_code != 0) {
    throw std::runtime_error("slapadd -f " + config_path_.string() + " -l " + ldif.string() +
                             " failed (exit " + std::to_string(added.exit_code) + "):\n" + added.out +
                             added.err);
  }

  port_ = free_port();
  tls_port_ = 0;
  if (options_.tls) {
    do {
      tls_port_ = free_port();
    } while (tls_port_ == port_);
  }
  launch();
}

void Slapd::launch() {
  // -d keeps slapd in the foreground (our child, logging to stderr); without it slapd daemonizes and is lost.
  // slapd -h takes one argument with the listener URIs separated by spaces.
  const std::string listen = tls_port_ == 0 ? uri() : uri() + " " + tls_uri();
  process_ = Process({"slapd", "-f", config_path_.string(), "-h", listen, "-d", "stats"}, log_path_);
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  // Ready when every listener accepts.
  while (!wait_for_port(port_, std::chrono::milliseconds(50)) ||
         (tls_port_ != 0 && !wait_for_port(tls_port_, std::chrono::milliseconds(50)))) {
    if (!process_.running()) {
      throw std::runtime_error("slapd exited at startup (exit " + std::to_string(process_.terminate()) +
                               "); log " + log_path_.string() + ":\n" + log_tail(log_path_));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      process_.terminate();
      throw std::runtime_error("slapd did not answer on " + listen + "; log " + log_path_.string() + ":\n" +
                               log_tail(log_path_));
    }
  }
}

void Slapd::stop() {
  process_.terminate(options_.stop_timeout);
}

void Slapd::restart() {
  if (port_ == 0) throw std::logic_error("Slapd::restart before start");
  stop();
  launch();
}

void Slapd::pause() {
  process_.pause();
}

void Slapd::resume() {
  process_.resume();
}

std::string Slapd::uri() const {
  return "ldap://127.0.0.1:" + std::to_string(port_) + "/";
}

std::string Slapd::tls_uri() const {
  if (tls_port_ == 0) throw std::logic_error("Slapd::tls_uri without SlapdOptions::tls");
  return "ldaps://127.0.0.1:" + std::to_string(tls_port_) + "/";
}

}  // namespace chainmail::harness
