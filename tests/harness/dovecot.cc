// dovecot.cc: see dovecot.h.
#include "harness/dovecot.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "harness/files.h"
#include "harness/net.h"
#include "harness/paths.h"

namespace chainmail::harness {
namespace {

constexpr const char* kStockAuthModules = "/usr/lib/dovecot/modules/auth";
constexpr const char* kPluginFile = "libauthdb_chainmail.so";

// The conf/dovecot files the test Dovecot runs (20-lmtp.conf belongs to the LMTP hook: add it through
// extra_conf when wanted).
constexpr const char* kConfFiles[] = {"10-auth.conf", "10-mail.conf", "10-master.conf", "20-imap.conf"};

struct Owner {
  uid_t uid;
  gid_t gid;
};

Owner mail_owner() {
  const passwd* pw = ::getpwnam("mail");
  if (pw == nullptr) throw std::runtime_error("Dovecot: no system user \"mail\"");
  return {pw->pw_uid, pw->pw_gid};
}

// The sanitizer runtimes this test process runs with, to preload into Dovecot (which is not built with them
// but loads our sanitized plugin). Empty in a build without sanitizers.
std::string sanitizer_preload() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::string asan;
  std::string ubsan;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const std::string name = std::filesystem::path(path).filename().string();
    if (asan.empty() && name.rfind("libasan.so", 0) == 0) asan = path;
    if (ubsan.empty() && name.rfind("libubsan.so", 0) == 0) ubsan = path;
  }
  if (asan.empty()) return ubsan;
  return ubsan.empty() ? asan : asan + " " + ubsan;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// A conf/dovecot file with its site paths replaced by the test's.
std::string derived_conf(const std::string& name, const std::map<std::string, std::string>& paths) {
  std::string text = read_file(source_dir() / "conf" / "dovecot" / "conf.d" / name);
  for (const auto& [from, to] : paths) replace_all(text, from, to);
  return text;
}

std::string absolute_or_empty(const std::filesystem::path& p) {
  return p.empty() ? std::string() : std::filesystem::absolute(p).string();
}

void copy_module_dir(const std::filesystem::path& plugin_dir, const std::filesystem::path& into) {
  std::filesystem::create_directories(into);
  // Copies, not links: a link to the stock folder would point at itself once `into` is mounted there.
  for (const auto& entry : std::filesystem::directory_iterator(kStockAuthModules)) {
    if (entry.is_regular_file()) {
      std::filesystem::copy_file(entry.path(), into / entry.path().filename(),
                                 std::filesystem::copy_options::overwrite_existing);
    }
  }
  const std::filesystem::path plugin = plugin_dir / kPluginFile;
  if (!std::filesystem::exists(plugin)) throw std::runtime_error("Dovecot: no " + plugin.string());
  std::filesystem::copy_file(plugin, into / kPluginFile, std::filesystem::copy_options::overwrite_existing);
}

}  // namespace

Dovecot::Dovecot()
    : dir_("dovecot"), config_path_(dir_.path() / "dovecot.conf"), log_path_(dir_.path() / "dovecot.log") {
  // Dovecot's mail processes (user "mail") and Postfix (user "postfix") reach sockets and homes below.
  std::filesystem::permissions(dir_.path(), std::filesystem::perms::owner_all |
                                                std::filesystem::perms::group_exec |
                                                std::filesystem::perms::others_exec);
  const std::filesystem::path mail = mail_root();
  std::filesystem::create_directory(mail);
  const Owner owner = mail_owner();
  if (::chown(mail.c_str(), owner.uid, owner.gid) != 0) {
    throw std::system_error(errno, std::generic_category(), "chown " + mail.string());
  }
}

std::filesystem::path Dovecot::mail_root() const {
  return dir_.path() / "mail";
}

std::filesystem::path Dovecot::auth_client_socket() const {
  return dir_.path() / "auth-client";
}

std::filesystem::path Dovecot::lmtp_socket() const {
  return dir_.path() / "lmtp";
}

void Dovecot::start(const DovecotOptions& options) {
  stop();
  if (options.chainmail_config.empty()) throw std::invalid_argument("Dovecot: chainmail_config is required");
  const std::string dir = dir_.path().string();
  const bool tls = !options.ssl_cert.empty() && !options.ssl_key.empty();
  if (auth_port_ == 0) auth_port_ = free_port();  // kept across restarts, like the sockets
  if (options.imap && imap_port_ == 0) imap_port_ = free_port();
  if (options.imap && tls && imaps_port_ == 0) imaps_port_ = free_port();
  if (!options.imap) imap_port_ = 0;
  if (!tls) imaps_port_ = 0;

  const std::filesystem::path plugin_dir = options.auth_module_dir.empty()
                                               ? build_bin_dir().parent_path() / "dovecot-modules" / "auth"
                                               : options.auth_module_dir;
  const std::filesystem::path modules = dir_.path() / "auth-modules";
  copy_module_dir(plugin_dir, modules);

  const std::map<std::string, std::string> paths = {
      {"/etc/chainmail/chainmail.conf", absolute_or_empty(options.chainmail_config)},
      {"/var/spool/postfix/private/auth", auth_client_socket().string()},
      {"/var/spool/postfix/private/dovecot-lmtp", lmtp_socket().string()},
      {"/etc/chainmail/tls/fullchain.pem", absolute_or_empty(options.ssl_cert)},
      {"/etc/chainmail/tls/privkey.pem", absolute_or_empty(options.ssl_key)},
      {"port = 143", "port = " + std::to_string(imap_port_)},
      {"port = 993", "port = " + std::to_string(imaps_port_)},
  };
  const std::filesystem::path conf_d = dir_.path() / "conf.d";
  std::filesystem::create_directories(conf_d);
  for (const auto& entry : std::filesystem::directory_iterator(conf_d)) std::filesystem::remove(entry.path());
  for (const char* name : kConfFiles) write_file(conf_d / name, derived_conf(name, paths));
  for (const auto& name : options.conf_files) write_file(conf_d / name, derived_conf(name, paths));
  const bool own_lmtp_listener =
      options.lmtp && std::find(options.conf_files.begin(), options.conf_files.end(), "20-lmtp.conf") ==
                          options.conf_files.end();
  if (tls) write_file(conf_d / "10-ssl.conf", derived_conf("10-ssl.conf", paths));

  const Owner owner = mail_owner();
  std::string protocols;
  if (options.imap) protocols += " imap";
  if (options.lmtp) protocols += " lmtp";
  std::string conf = "# Generated by tests/harness/dovecot.cc from conf/dovecot (see dovecot.h).\n";
  conf += "base_dir = " + dir + "/run\n";
  conf += "state_dir = " + dir + "/state\n";
  conf += "log_path = " + log_path_.string() + "\n";
  conf += "instance_name = chainmail-test-" + std::to_string(::getpid()) + "\n";
  conf += "protocols =" + protocols + "\n";
  conf += "listen = 127.0.0.1\n";
  conf += "!include conf.d/*.conf\n\n# Test settings, after conf/dovecot's so they win.\n";
  conf += "auth_failure_delay = 0\n";
  conf += "first_valid_uid = " + std::to_string(owner.uid) + "\n";
  if (!tls) conf += "ssl = no\n";
  if (options.auth_username_chars) conf += "auth_username_chars = " + *options.auth_username_chars + "\n";
  conf += "service auth {\n  inet_listener auth-postfix {\n    address = 127.0.0.1\n    port = " +
          std::to_string(auth_port_) + "\n  }\n}\n";
  if (own_lmtp_listener) {
    conf += "service lmtp {\n  unix_listener " + lmtp_socket().string() + " {\n    mode = 0666\n  }\n}\n";
  }
  Env env;
  const std::string preload = sanitizer_preload();
  if (!preload.empty()) {
    env["LD_PRELOAD"] = preload;
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1";
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1";
    conf += "import_environment = $import_environment LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS\n";
    // ASan reserves terabytes of address space; Dovecot's default 256M limit kills every service.
    conf += "default_vsz_limit = 0\n";
  }
  conf += options.extra_conf;
  write_file(config_path_, conf);

  std::error_code ignored;
  for (const auto& socket : {auth_client_socket(), lmtp_socket()}) std::filesystem::remove(socket, ignored);

  const std::string script =
      "mount --bind \"$1\" " + std::string(kStockAuthModules) + " && exec dovecot -F -c \"$2\"";
  process_ = Process({"unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", modules.string(),
                      config_path_.string()},
                     log_path_, env);

  const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
  auto ready = [&] {
    if (!std::filesystem::exists(auth_client_socket())) return false;
    if (options.lmtp && !std::filesystem::exists(lmtp_socket())) return false;
    if (imap_port_ != 0 && !wait_for_port(imap_port_, std::chrono::milliseconds(0))) return false;
    return wait_for_port(auth_port_, std::chrono::milliseconds(0));
  };
  while (!ready()) {
    if (!process_.running()) {
      throw std::runtime_error("dovecot exited at startup (exit " + std::to_string(process_.terminate()) +
                               "); log " + log_path_.string() + ":\n" + log_tail(log_path_));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      process_.terminate();
      throw std::runtime_error("dovecot did not open its listeners in time; log " + log_path_.string() +
                               ":\n" + log_tail(log_path_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Dovecot::stop() {
  process_.terminate();
}

RunResult Dovecot::doveadm(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv = {"doveadm", "-c", config_path_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {}, timeout);
}

RunResult Dovecot::auth_test(std::string_view user, std::string_view password) const {
  return doveadm({"auth", "test", "-x", "no-penalty", std::string(user), std::string(password)});
}

RunResult Dovecot::user(std::string_view user) const {
  return doveadm({"user", std::string(user)});
}

}  // namespace chainmail::harness
