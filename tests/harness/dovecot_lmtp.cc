// dovecot_lmtp.cc: see dovecot_lmtp.h.
#include "harness/dovecot_lmtp.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
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

}  // namespace

DovecotLmtp::DovecotLmtp()
    : dir_("dovecot"), config_path_(dir_.path() / "dovecot.conf"), log_path_(dir_.path() / "dovecot.log") {
  std::filesystem::permissions(dir_.path(), std::filesystem::perms::owner_all |
                                                std::filesystem::perms::group_exec |
                                                std::filesystem::perms::others_exec);
  const std::filesystem::path mail = dir_.path() / "mail";
  std::filesystem::create_directory(mail);
  const Owner owner = mail_owner();
  if (::chown(mail.c_str(), owner.uid, owner.gid) != 0) {
    throw std::system_error(errno, std::generic_category(), "chown " + mail.string());
  }
}

std::filesystem::path DovecotLmtp::lmtp_socket() const {
  return dir_.path() / "run" / "lmtp";
}

std::filesystem::path DovecotLmtp::maildir(std::string_view user) const {
  return dir_.path() / "mail" / user / "Maildir";
}

void DovecotLmtp::start() {
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
                           dir + "/mail/%n/Maildir\n" +                               //
                           "passdb {\n  driver = static\n  args = nopassword=y\n}\n"  //
                           "userdb {\n  driver = static\n  args = uid=" +
                           std::to_string(owner.uid) + " gid=" + std::to_string(owner.gid) + " home=" + dir +
                           "/mail/%n\n}\n" +
                           "service lmtp {\n  unix_listener lmtp {\n    mode = 0666\n  }\n}\n";
  write_file(config_path_, conf);
  std::error_code ignored;
  std::filesystem::remove(lmtp_socket(), ignored);  // A socket left by a killed instance would look ready.

  process_ = Process({"dovecot", "-F", "-c", config_path_.string()}, log_path_);
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
  std::vector<std::filesystem::path> out;
  for (const char* sub : {"new", "cur"}) {
    const std::filesystem::path folder = maildir(user) / sub;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
      if (entry.is_regular_file()) out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.filename().string() < b.filename().string(); });
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
