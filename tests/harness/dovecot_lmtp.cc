// dovecot_lmtp.cc: see dovecot_lmtp.h.
#include "harness/dovecot_lmtp.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "harness/files.h"

namespace chainmail::harness {
namespace {

constexpr const char* kMailUser = "mail";

struct Owner {
  uid_t uid;
  gid_t gid;
};

Owner mail_owner() {
  const passwd* pw = ::getpwnam(kMailUser);
  if (pw == nullptr) throw std::runtime_error("DovecotLmtp: no system user \"mail\"");
  return {pw->pw_uid, pw->pw_gid};
}

// The sanitizer runtimes this test process runs with (from /proc/self/maps), for LD_PRELOAD into Dovecot,
// which loads our sanitized plugins but is not itself built with them. Empty without a sanitizer.
std::string sanitizer_preload() {
#if defined(__SANITIZE_ADDRESS__)
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
  if (asan.empty()) return {};
  return ubsan.empty() ? asan : asan + " " + ubsan;
#else
  return {};
#endif
}

// A passwd-file userdb for the users with extra fields, in front of the static one (a user it does not know
// falls through to the static userdb).
std::string userdb_fields_block(const DovecotLmtpOptions& options, const std::string& dir, uid_t uid,
                                gid_t gid) {
  if (options.user_fields.empty()) return {};
  std::string users;
  for (const auto& [user, fields] : options.user_fields) {
    // passwd-file's extra fields reach the userdb answer only with the userdb_ prefix.
    std::string extra;
    std::istringstream words(fields);
    std::string word;
    while (words >> word) {
      if (!extra.empty()) extra += ' ';
      extra += word.rfind("userdb_", 0) == 0 ? word : "userdb_" + word;
    }
    users += user + "::" + std::to_string(uid) + ":" + std::to_string(gid) + "::" + dir + "/mail/" + user +
             "::" + extra + "\n";
  }
  const std::string file = dir + "/userdb-fields";
  write_file(file, users);
  return "userdb {\n  driver = passwd-file\n  args = " + file + "\n}\n";
}

// Makes `path` (a folder or file under the mail root) belong to the mail user.
void chown_to_mail(const std::filesystem::path& path, const Owner& owner) {
  if (::chown(path.c_str(), owner.uid, owner.gid) != 0) {
    throw std::system_error(errno, std::generic_category(), "chown " + path.string());
  }
}

constexpr const char* kStockSievePlugin = "/usr/lib/dovecot/modules/lib90_sieve_plugin.so";

}  // namespace

Env sanitizer_env() {
  Env env;
  const std::string preload = sanitizer_preload();
  if (preload.empty()) return env;
  env["LD_PRELOAD"] = preload;
  env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1";
  env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1";
  return env;
}

DovecotLmtp::DovecotLmtp()
    : dir_("dovecot"), config_path_(dir_.path() / "dovecot.conf"), log_path_(dir_.path() / "dovecot.log") {
  std::filesystem::permissions(dir_.path(), std::filesystem::perms::owner_all |
                                                std::filesystem::perms::group_exec |
                                                std::filesystem::perms::others_exec);
  const std::filesystem::path mail = dir_.path() / "mail";
  std::filesystem::create_directory(mail);
  chown_to_mail(mail, mail_owner());
}

std::filesystem::path DovecotLmtp::lmtp_socket() const {
  return dir_.path() / "run" / "lmtp";
}

std::filesystem::path DovecotLmtp::maildir(std::string_view user) const {
  return dir_.path() / "mail" / user / "Maildir";
}

void DovecotLmtp::start(const DovecotLmtpOptions& options) {
  stop();
  const std::string dir = dir_.path().string();
  const Owner owner = mail_owner();
  // instance_name keeps this Dovecot apart from a system one in doveadm and in process titles.
  // first_valid_uid admits the "mail" user, whose uid is below Dovecot's default floor of 500.
  const std::string conf = "base_dir = " + dir + "/run\n" +             //
                           "state_dir = " + dir + "/state\n" +          //
                           "log_path = " + log_path_.string() + "\n" +  //
                           "instance_name = chainmail-test\n"           //
                           "protocols = lmtp\n"                         //
                           "ssl = no\n"                                 //
                           "auth_failure_delay = 0\n"                   //
                           "first_valid_uid = " +
                           std::to_string(owner.uid) + "\n" +  //
                           "auth_username_format = %Ln\n"      //
                           "mail_location = maildir:" +
                           dir + "/mail/%n/Maildir\n" +  //
                           "passdb {\n  driver = static\n  args = nopassword=y\n}\n" +
                           userdb_fields_block(options, dir, owner.uid, owner.gid) +
                           "userdb {\n  driver = static\n  args = uid=" + std::to_string(owner.uid) +
                           " gid=" + std::to_string(owner.gid) + " home=" + dir + "/mail/%n\n}\n" +
                           "service lmtp {\n  unix_listener lmtp {\n    mode = 0666\n  }\n}\n";
  const bool sieve = !options.sieve_scripts.empty() || !options.sieve_plugin_dir.empty();
  std::string plugins;
  Env env;
  if (!options.mail_plugin_dir.empty() || !options.sieve_plugin_dir.empty()) {
    std::filesystem::path plugin_dir = options.mail_plugin_dir;
    if (!plugin_dir.empty() && sieve) {
      // mail_plugin_dir hides Dovecot's own plugins: the Sieve plugin is linked in beside ours.
      plugin_dir = dir_.path() / "modules";
      std::filesystem::remove_all(plugin_dir);
      std::filesystem::create_directory(plugin_dir);
      for (const auto& entry : std::filesystem::directory_iterator(options.mail_plugin_dir)) {
        if (entry.is_regular_file()) {
          std::filesystem::create_symlink(entry.path(), plugin_dir / entry.path().filename());
        }
      }
      std::filesystem::create_symlink(kStockSievePlugin, plugin_dir / "lib90_sieve_plugin.so");
    }
    if (!plugin_dir.empty()) plugins += "mail_plugin_dir = " + plugin_dir.string() + "\n";
    env = sanitizer_env();
    if (!env.empty()) {
      plugins += "import_environment = TZ CORE_OUTOFMEM CORE_ERROR LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS\n";
      // ASan reserves terabytes of address space for its shadow memory: no vsz_limit (default 256M).
      plugins += "default_vsz_limit = 0\n";
    }
  }
  std::string mail_plugins = options.mail_plugins;
  if (sieve) mail_plugins += mail_plugins.empty() ? "sieve" : " sieve";
  if (!mail_plugins.empty()) {
    plugins += "protocol lmtp {\n  mail_plugins = $mail_plugins " + mail_plugins + "\n}\n";
  }
  if (!options.plugin_settings.empty() || sieve) {
    plugins += "plugin {\n";
    if (sieve) plugins += "  sieve = file:~/sieve;active=~/.dovecot.sieve\n";
    if (!options.sieve_plugin_dir.empty()) {
      plugins += "  sieve_plugin_dir = " + options.sieve_plugin_dir.string() + "\n";
    }
    for (const auto& [key, value] : options.plugin_settings) plugins += "  " + key + " = " + value + "\n";
    plugins += "}\n";
  }
  for (const auto& [user, script] : options.sieve_scripts) {
    const std::filesystem::path home = dir_.path() / "mail" / user;
    std::filesystem::create_directories(home);
    chown_to_mail(home, owner);
    write_file(home / ".dovecot.sieve", script);
    chown_to_mail(home / ".dovecot.sieve", owner);
    std::filesystem::remove(home / ".dovecot.svbin");  // compiled from an earlier script
  }
  write_file(config_path_, conf + plugins);
  std::error_code ignored;
  std::filesystem::remove(lmtp_socket(), ignored);  // A socket left by a killed instance would look ready.

  process_ = Process({"dovecot", "-F", "-c", config_path_.string()}, log_path_, env);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!std::filesystem::exists(lmtp_socket())) {
    if (!process_.running()) {
      throw std::runtime_error("dovecot exited at startup (exit " + std::to_string(process_.terminate()) +
                               "); log " + log_path_.string() + ":\n" + log_tail(log_path_));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      process_.terminate();
      throw std::runtime_error("dovecot did not create " + lmtp_socket().string() + "; log " +
                               log_path_.string() + ":\n" + log_tail(log_path_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void DovecotLmtp::stop() {
  process_.terminate();
}

std::vector<std::filesystem::path> DovecotLmtp::messages(std::string_view user) const {
  return messages(user, "INBOX");
}

std::vector<std::filesystem::path> DovecotLmtp::messages(std::string_view user,
                                                         std::string_view folder_name) const {
  const std::filesystem::path root =
      folder_name == "INBOX" ? maildir(user) : maildir(user) / ("." + std::string(folder_name));
  std::vector<std::filesystem::path> out;
  for (const char* sub : {"new", "cur"}) {
    const std::filesystem::path folder = root / sub;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
      if (entry.is_regular_file()) out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.filename().string() < b.filename().string(); });
  return out;
}

std::vector<std::string> DovecotLmtp::subscriptions(std::string_view user) const {
  std::vector<std::string> out;
  std::ifstream in(maildir(user) / "subscriptions");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

bool DovecotLmtp::wait_for_messages(std::string_view user, std::size_t count,
                                    std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (messages(user).size() < count) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace chainmail::harness
