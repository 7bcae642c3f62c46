// milter_daemon_test.cc - chainmail-milter as a process: configuration errors, SIGHUP reload (new rules for
// new messages, connections kept, a bad file keeps the running configuration), SIGTERM.
//
// The directory is the demo LDIF file and the checks are off the path (recipients only), so no slapd or DNS
// server is needed. The milter is spoken to in its own protocol by a minimal client written from the
// Sendmail milter protocol description (4-octet length, command octet, data), and its socketmap through
// `postmap -q`, as Postfix asks it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <thread>

#include "adapters/unique_fd.h"
#include "harness/milter_process.h"
#include "harness/net.h"
#include "harness/paths.h"
#include "harness/postfix.h"
#include "harness/temp_dir.h"
#include "integration_support.h"

namespace chainmail::integration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string config_text(std::uint16_t socketmap_port, std::string_view extra_aliases) {
  std::string text;
  text += "[domains]\nmain = \"pydis.wtf\"\naliases = [\"pydis.com\"]\ninternal = \"int.pydis.wtf\"\n";
  text += "[directory]\nldif_file = " + toml_string((harness::source_dir() / "conf/ldap/demo.ldif").string());
  text += "\nbase_dn = \"dc=box,dc=pydis,dc=wtf\"\n";
  text += "[socketmap]\nlisten = \"inet:127.0.0.1:";
  text += std::to_string(socketmap_port);
  text += "\"\n[milter]\nlog = \"stderr\"\ntrusted_networks = [\"127.0.0.0/8\"]\n";
  text += "[aliases]\npostmaster = \"alice\"\n";
  text += extra_aliases;
  return text;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// A milter protocol client: just enough to hold a connection open across a reload and route a recipient.
class MilterClient {
 public:
  explicit MilterClient(std::uint16_t port) {
    fd_ = UniqueFd(socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fd_.reset();
    timeval tv{5, 0};
    setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  bool connected() const { return fd_.get() >= 0; }

  void send(char cmd, const std::string& data) {
    std::string packet(4, '\0');
    const auto len = htonl(static_cast<std::uint32_t>(data.size() + 1));
    std::memcpy(packet.data(), &len, 4);
    packet += cmd;
    packet += data;
    ASSERT_EQ(::write(fd_.get(), packet.data(), packet.size()), static_cast<ssize_t>(packet.size()));
  }
  // Bytes as they are, several commands at once.
  void send_raw(const std::string& bytes) {
    ASSERT_EQ(::write(fd_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  // The next reply's command octet ('c' continue, 'r' reject, 't' tempfail, 'y' reply code, 'O' optneg), or
  // nullopt when the connection closed or timed out.
  std::optional<char> reply() {
    std::uint32_t len = 0;
    if (!read_exact(&len, 4)) return std::nullopt;
    len = ntohl(len);
    std::string body(len, '\0');
    if (len == 0 || !read_exact(body.data(), len)) return std::nullopt;
    last_ = body.substr(1);
    return body[0];
  }
  const std::string& last() const { return last_; }

  // Option negotiation as Postfix does it: version 6, every action, no protocol steps skipped.
  std::optional<char> negotiate() {
    std::string data;
    for (std::uint32_t v : {6U, 0x1ffU, 0U}) {
      const auto n = htonl(v);
      data.append(reinterpret_cast<const char*>(&n), 4);
    }
    send('O', data);
    return reply();
  }

 private:
  bool read_exact(void* p, std::size_t n) {
    auto* c = static_cast<char*>(p);
    while (n > 0) {
      const auto r = ::read(fd_.get(), c, n);
      if (r <= 0) return false;
      c += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  }
  UniqueFd fd_;
  std::string last_;
};

std::size_t count(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

std::string nul_joined(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    out += p;
    out += '\0';
  }
  return out;
}

class MilterDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    socketmap_port_ = harness::free_port();
    config_ = dir_.path() / "chainmail.conf";
    write_file(config_, config_text(socketmap_port_, ""));
  }
  std::string lookup(std::string_view key) {
    const auto r =
        postfix_.postmap_query(key, "socketmap:inet:127.0.0.1:" + std::to_string(socketmap_port_) + ":route");
    return r.exit_code == 0 ? r.out : "NOTFOUND(" + std::to_string(r.exit_code) + ")";
  }
  // Polls the socketmap until `key` routes to `want` (a reload is asynchronous to the signal).
  bool eventually(std::string_view key, std::string_view want) {
    for (int i = 0; i < 50; ++i) {
      if (lookup(key).find(want) != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  harness::TempDir dir_;
  fs::path config_;
  std::uint16_t socketmap_port_ = 0;
  harness::PostfixTools postfix_;
  harness::MilterProcess milter_;
};

TEST_F(MilterDaemon, BadConfigurationExits78WithTheErrorAndItsLine) {
  write_file(config_, config_text(socketmap_port_, "") + "[spf]\nreject_helo_fail = \"maybe\"\n");
  const auto r = harness::run({harness::milter_bin().string(), "--config", config_.string()});
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_NE(r.err.find("spf.reject_helo_fail"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("chainmail.conf:"), std::string::npos) << r.err;
}

TEST_F(MilterDaemon, ReloadAppliesNewRulesToNewMessagesAndKeepsConnections) {
  milter_.start(config_, {socketmap_port_});
  EXPECT_NE(lookup("postmaster@pydis.wtf").find("alice@localhost"), std::string::npos);
  EXPECT_EQ(lookup("newalias@pydis.wtf").rfind("NOTFOUND", 0), 0U);

  // A connection opened before the reload...
  MilterClient held(milter_.port());
  ASSERT_TRUE(held.connected());
  ASSERT_EQ(held.negotiate(), 'O');

  write_file(config_, config_text(socketmap_port_, "newalias = \"bob\"\n"));
  milter_.reload();
  ASSERT_TRUE(eventually("newalias@pydis.wtf", "bob@localhost")) << milter_.log();

  // ...is still served, and its next message is routed by the new rules.
  held.send('C',
            nul_joined({"client.example"}) + "4" + std::string("\x00\x19", 2) + nul_joined({"127.0.0.1"}));
  ASSERT_EQ(held.reply(), 'c');
  held.send('H', nul_joined({"client.example"}));
  ASSERT_EQ(held.reply(), 'c');
  held.send('M', nul_joined({"<x@example.org>"}));
  ASSERT_EQ(held.reply(), 'c');
  held.send('R', nul_joined({"<newalias@pydis.wtf>"}));
  EXPECT_EQ(held.reply(), 'c') << held.last();
  held.send('R', nul_joined({"<nobody@pydis.wtf>"}));
  EXPECT_EQ(held.reply(), 'y');
  EXPECT_NE(held.last().find("550 5.1.1"), std::string::npos) << held.last();
  EXPECT_NE(milter_.log().find("configuration reloaded"), std::string::npos);
}

TEST_F(MilterDaemon, BadReloadKeepsTheRunningConfiguration) {
  milter_.start(config_, {socketmap_port_});
  write_file(config_, config_text(socketmap_port_, "") + "[unknown_section]\nx = 1\n");
  milter_.reload();
  for (int i = 0; i < 50 && milter_.log().find("reload failed") == std::string::npos; ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_NE(milter_.log().find("reload failed, keeping the running configuration"), std::string::npos)
      << milter_.log();
  EXPECT_TRUE(milter_.running());
  EXPECT_NE(lookup("postmaster@pydis.wtf").find("alice@localhost"), std::string::npos);
}

TEST_F(MilterDaemon, DropsToTheConfiguredUserOnceItsSocketsAreOpen) {
  std::string text = config_text(socketmap_port_, "");
  text.replace(text.find("[milter]\n"), 9, "[milter]\nuser = \"nobody\"\n");
  write_file(config_, text);
  milter_.start(config_, {socketmap_port_});
  // The ports open just before the drop: poll until it has happened (it takes microseconds).
  std::string uid;
  for (int i = 0; i < 100; ++i) {
    std::ifstream status("/proc/" + std::to_string(milter_.pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Uid:", 0) == 0) uid = line;
    }
    if (uid.find("\t0\t") == std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(uid.find("\t0\t"), std::string::npos) << uid;  // no real, effective or saved uid 0 left
  EXPECT_NE(uid, "") << "no Uid line";
  EXPECT_NE(lookup("postmaster@pydis.wtf").find("alice@localhost"), std::string::npos);  // still serving
}

// Signals in quick succession: while the main thread still has one pending, the kernel hands the next to
// another thread, and libmilter's signal thread (if it were sigwait()ing) would take it and stop the milter.
TEST_F(MilterDaemon, BurstOfSighupsKeepsServingAndSigtermStillStops) {
  milter_.start(config_, {socketmap_port_});
  for (int i = 0; i < 20; ++i) milter_.reload();
  for (int i = 0; i < 100 && count(milter_.log(), "configuration reloaded") == 0; ++i)
    std::this_thread::sleep_for(50ms);
  MilterClient client(milter_.port());
  ASSERT_TRUE(client.connected()) << milter_.log();
  EXPECT_EQ(client.negotiate(), 'O') << milter_.log();
  EXPECT_TRUE(milter_.running());
  EXPECT_EQ(milter_.log().find("libmilter stopped"), std::string::npos) << milter_.log();
  EXPECT_EQ(milter_.stop(30s), 0) << milter_.log();
  EXPECT_NE(milter_.log().find("stopping on signal 15"), std::string::npos) << milter_.log();
}

// Read system calls the whole process has made (every thread, live or gone), from /proc/PID/io.
std::optional<long> read_syscalls(pid_t pid) {  // NOLINT(google-runtime-int): the kernel's counter
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  std::string key;
  long value = 0;  // NOLINT(google-runtime-int)
  while (in >> key >> value) {
    if (key == "syscr:") return value;
  }
  return std::nullopt;
}

// libmilter reads each command with two read(2) calls; milter/libmilter_io.cc serves the commands that
// arrive together from one. 300 macro commands and a connect, written at once, must cost a handful of
// reads, not 600, and be understood exactly as before: the macro values reach the log line.
TEST_F(MilterDaemon, CommandsThatArriveTogetherAreReadTogether) {
  milter_.start(config_, {socketmap_port_});
  MilterClient client(milter_.port());
  ASSERT_TRUE(client.connected());
  ASSERT_EQ(client.negotiate(), 'O');
  const auto before = read_syscalls(milter_.pid());
  ASSERT_TRUE(before.has_value()) << "no /proc/PID/io";
  std::string burst;
  auto frame = [&](char cmd, const std::string& data) {
    const auto len = htonl(static_cast<std::uint32_t>(data.size() + 1));
    burst.append(reinterpret_cast<const char*>(&len),
                 4);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
    burst += cmd;
    burst += data;
  };
  for (int i = 0; i < 300; ++i)
    frame('D', "C" + nul_joined({"j", "mx" + std::to_string(i) + ".chainmail.test"}));
  frame('C', nul_joined({"client.example"}) + "4" + std::string("\x00\x19", 2) + nul_joined({"127.0.0.1"}));
  client.send_raw(burst);
  ASSERT_EQ(client.reply(), 'c');
  client.send('H', nul_joined({"client.example"}));
  ASSERT_EQ(client.reply(), 'c');
  const auto after = read_syscalls(milter_.pid());
  ASSERT_TRUE(after.has_value());
  EXPECT_LT(*after - *before, 40) << "read(2) calls for 302 commands";
  EXPECT_TRUE(milter_.running());
}

TEST_F(MilterDaemon, SigtermStopsCleanly) {
  milter_.start(config_, {socketmap_port_});
  const auto begin = std::chrono::steady_clock::now();
  // 30 s: a sanitizer build's leak check at exit is slow on a loaded machine; a hang lasts forever.
  EXPECT_EQ(milter_.stop(30s), 0) << milter_.log();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 30s);
  EXPECT_NE(milter_.log().find("stopping on signal 15"), std::string::npos);
  EXPECT_FALSE(harness::wait_for_port(milter_.port(), 200ms));
}

}  // namespace
}  // namespace chainmail::integration
