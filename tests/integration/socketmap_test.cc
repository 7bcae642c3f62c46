// socketmap_test.cc: `chainmail socketmap` (Postfix's socketmap protocol, map "route") against a real slapd,
// queried by real Postfix (`postmap -q KEY socketmap:inet:127.0.0.1:PORT:route`) and by a raw netstring
// client for what postmap cannot send (NUL bytes, unknown maps, broken framing).
//
// One slapd and one socketmap server per suite. The server's cache is off (cache.max_entries = 0) so every
// query reaches slapd whatever order the tests run in.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "adapters/unique_fd.h"
#include "harness/net.h"
#include "harness/postfix.h"
#include "integration_support.h"

namespace chainmail::integration {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
using namespace std::string_view_literals;

std::string netstring(std::string_view payload) {
  return std::to_string(payload.size()) + ":" + std::string(payload) + ",";
}

// A socketmap client written from socketmap_table(5), independent of the server's own netstring code.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (!fd_.valid()) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::system_error(errno, std::generic_category(), "connect 127.0.0.1:" + std::to_string(port));
    }
  }

  // MSG_NOSIGNAL: a server that already closed the connection must fail the test, not kill it (SIGPIPE).
  bool send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // The payload of the next reply; nothing when the server closed the connection or did not answer in time.
  std::optional<std::string> reply(milliseconds timeout = seconds(10)) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      if (auto payload = take_reply()) return payload;
      if (!receive(deadline)) return std::nullopt;
    }
  }

  std::optional<std::string> request(std::string_view payload, milliseconds timeout = seconds(10)) {
    if (!send_raw(netstring(payload))) return std::nullopt;
    return reply(timeout);
  }

  // True when the server closes the connection within `timeout` without sending anything more.
  bool closed_by_server(milliseconds timeout = seconds(5)) {
    const auto deadline = Clock::now() + timeout;
    while (receive(deadline)) {
    }
    return eof_ && buf_.empty();
  }

 private:
  // Reads once into buf_; false at end of stream, on error or at the deadline.
  bool receive(Clock::time_point deadline) {
    if (eof_) return false;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  std::optional<std::string> take_reply() {
    const std::size_t colon = buf_.find(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    const std::size_t len = std::stoul(buf_.substr(0, colon));
    if (buf_.size() < colon + 1 + len + 1) return std::nullopt;
    EXPECT_EQ(buf_[colon + 1 + len], ',') << "reply netstring not terminated: " << buf_;
    std::string payload = buf_.substr(colon + 1, len);
    buf_.erase(0, colon + 1 + len + 1);
    return payload;
  }

  UniqueFd fd_;
  std::string buf_;
  bool eof_ = false;
};

class Socketmap : public SlapdSuite<> {
 public:
  static void SetUpTestSuite() {
    SlapdSuite::SetUpTestSuite();
    auto& s = server();
    s.error.clear();
    try {
      s.port = harness::free_port();
      const std::string listen = "inet:127.0.0.1:" + std::to_string(s.port);
      s.config = std::make_unique<ConfigFile>(demo_config({slapd().uri()}, {{"listen", "\"" + listen + "\""},
                                                                            {"connect_timeout_ms", "500"},
                                                                            {"search_timeout_ms", "500"},
                                                                            {"max_entries", "0"}}));
      s.process = harness::Process(
          {chainmail_bin().string(), "socketmap", "--config", s.config->path().string(), "--listen", listen},
          s.config->dir() / "socketmap.log");
      if (!harness::wait_for_port(s.port, seconds(10))) {
        s.error =
            "chainmail socketmap does not listen on " + listen + ":\n" + read_text(s.process.log_path());
      }
    } catch (const std::exception& e) {
      s.error = e.what();
    }
  }

  static void TearDownTestSuite() {
    auto& s = server();
    if (s.process.pid() > 0) {
      // SIGTERM is the documented way to stop it: a clean exit, and no sanitizer report in its log. A
      // sanitizer build's leak check at exit can take seconds on a loaded machine: allow it time.
      const int status = s.process.terminate(std::chrono::seconds(30));
      const std::string log = read_text(s.process.log_path());
      if (status != 0 || has_sanitizer_report(log)) {
        ADD_FAILURE() << "chainmail socketmap exited " << status << "; log:\n" << log;
      }
    }
    s.process = harness::Process();
    s.config.reset();
    SlapdSuite::TearDownTestSuite();
  }

 protected:
  void SetUp() override {
    SlapdSuite::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(server().error.empty()) << server().error;
    ASSERT_TRUE(server().process.running()) << read_text(server().process.log_path());
  }

  static std::uint16_t port() { return server().port; }
  static std::string map() { return "socketmap:inet:127.0.0.1:" + std::to_string(port()) + ":route"; }

  harness::RunResult postmap(const std::string& key) const { return postfix_.postmap_query(key, map()); }

 private:
  struct Server {
    std::unique_ptr<ConfigFile> config;
    harness::Process process;
    std::uint16_t port = 0;
    std::string error;
  };
  static Server& server() {
    static Server s;
    return s;
  }

  harness::PostfixTools postfix_;
};

TEST_F(Socketmap, PostmapFindsTargets) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"joe@pydis.wtf", "joe@jb3.dev"},
      {"devops@pydis.wtf", "alice@localhost,joe@jb3.dev,bob@localhost,carol@example.net"},
      {"fortune@int.pydis.wtf", "fortune@service-mail.localhost"},
      {"alice@pydis.com", "alice@localhost"},
      {"dmarc+reports@int.pydis.wtf", "dmarc+reports@localhost"},
      {"staff@pydis.wtf", "staffer@localhost"},
  };
  for (const auto& [key, value] : cases) {
    const harness::RunResult r = postmap(key);
    EXPECT_EQ(r.exit_code, 0) << key << ": " << r.err;
    EXPECT_EQ(r.out, value + "\n") << key;
    EXPECT_EQ(r.err, "") << key;
  }
}

TEST_F(Socketmap, PostmapNotFound) {
  for (const char* key :
       {"nobody@pydis.wtf", "x@example.org", "ghosts@pydis.wtf", "a*b@pydis.wtf", "@pydis.wtf"}) {
    const harness::RunResult r = postmap(key);
    EXPECT_EQ(r.exit_code, 1) << key << ": " << r.err;  // postmap -q: 1 is "not found"
    EXPECT_EQ(r.out, "") << key;
    EXPECT_EQ(r.err, "") << key;
  }
}

// With slapd down the server answers TEMP. postmap cannot say "temporary" through its exit status: a query
// error is msg_fatal(), which also exits 1, the status of "not found". What tells them apart is the
// diagnostic on stderr (nothing at all for "not found", see PostmapNotFound). Postfix's smtpd/cleanup treat
// the same TEMP as a lookup error and defer (451 4.3.0, HOST-NOTES).
TEST_F(Socketmap, SlapdStoppedIsTemporaryError) {
  slapd().stop();
  const harness::RunResult r = postmap("joe@pydis.wtf");
  EXPECT_NE(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err, "");
  EXPECT_NE(r.err.find("socketmap server temporary error"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fatal: table " + map() + ": query error"), std::string::npos) << r.err;

  RawClient client(port());
  const auto reply = client.request("route nobody@pydis.wtf");
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(reply->starts_with("TEMP ")) << *reply;

  slapd().restart();  // same port: the server's next lookup reconnects
  const harness::RunResult again = postmap("joe@pydis.wtf");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "joe@jb3.dev\n");
  EXPECT_EQ(client.request("route nobody@pydis.wtf"), "NOTFOUND ");
}

TEST_F(Socketmap, SlapdPausedIsTemporaryWithinTimeouts) {
  RawClient client(port());
  slapd().pause();
  const auto start = Clock::now();
  const auto reply = client.request("route alice@pydis.wtf", seconds(20));
  const auto elapsed = Clock::now() - start;
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(reply->starts_with("TEMP ")) << *reply;
  EXPECT_LT(elapsed, seconds(10));

  slapd().resume();
  EXPECT_EQ(client.request("route alice@pydis.wtf"), "OK alice@localhost");
}

// A NUL byte cannot be in argv or in a postmap key, but a socketmap key may hold any octet.
TEST_F(Socketmap, NulByteKeyIsNotFoundAndConnectionStaysUsable) {
  RawClient client(port());
  EXPECT_EQ(client.request("route a\0b@pydis.wtf"sv), "NOTFOUND ");
  EXPECT_EQ(client.request("route alice\0@pydis.wtf"sv), "NOTFOUND ");
  EXPECT_EQ(client.request("route joe@pydis.wtf"), "OK joe@jb3.dev");
}

TEST_F(Socketmap, RequestsAnsweredInOrderOnOneConnection) {
  RawClient client(port());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"route *@pydis.wtf", "NOTFOUND "},
      {R"(route "x)(uid=*"@pydis.wtf)", "NOTFOUND "},
      {R"(route "back\\slash"@pydis.wtf)", "NOTFOUND "},
      {"route cycle-a@pydis.wtf", "OK bob@localhost,alice@localhost"},
      {"route", "PERM malformed request"},
      {"route ", "PERM empty key"},
  };
  for (const auto& [request, want] : cases) EXPECT_EQ(client.request(request), want) << request;

  const auto unknown_map = client.request("virtual joe@pydis.wtf");
  ASSERT_TRUE(unknown_map.has_value());
  EXPECT_TRUE(unknown_map->starts_with("PERM ")) << *unknown_map;

  // Pipelined: two requests in one write, two replies in order.
  ASSERT_TRUE(client.send_raw(netstring("route joe@pydis.wtf") + netstring("route nobody@pydis.wtf")));
  EXPECT_EQ(client.reply(), "OK joe@jb3.dev");
  EXPECT_EQ(client.reply(), "NOTFOUND ");
}

// "OK alice+x,bob@localhost" would be read by Postfix as two recipients, one of them bob@localhost.
TEST_F(Socketmap, QuotedDetailWithCommaIsNotTwoRecipients) {
  RawClient client(port());
  const auto reply = client.request(R"(route "alice+x,bob"@pydis.wtf)");
  ASSERT_TRUE(reply.has_value());
  if (reply->starts_with("OK ")) {
    // One target only (alice's mailbox), so the whole value must be one address.
    EXPECT_TRUE(is_single_address(reply->substr(3))) << *reply;
  } else {
    EXPECT_EQ(*reply, "NOTFOUND ");
  }
}

TEST_F(Socketmap, MalformedNetstringClosesOnlyThatConnection) {
  RawClient good(port());
  EXPECT_EQ(good.request("route alice@pydis.wtf"), "OK alice@localhost");

  for (const char* bad : {"5:abc,xx", "x:route joe@pydis.wtf,", "99999999:route"}) {
    RawClient broken(port());
    ASSERT_TRUE(broken.send_raw(bad));
    EXPECT_TRUE(broken.closed_by_server()) << bad;
    EXPECT_EQ(good.request("route joe@pydis.wtf"), "OK joe@jb3.dev") << "after " << bad;
  }
  RawClient fresh(port());
  EXPECT_EQ(fresh.request("route dave@pydis.wtf"), "OK dave@localhost");
}

}  // namespace
}  // namespace chainmail::integration

namespace chainmail::integration {
namespace {

// SIGHUP reloads chainmail.conf without dropping the listener; a broken file keeps the running configuration.
class SocketmapReload : public SlapdSuite<> {};

TEST_F(SocketmapReload, SighupAppliesANewConfigurationAndSurvivesABadOne) {
  const std::uint16_t port = harness::free_port();
  const std::string listen = "inet:127.0.0.1:" + std::to_string(port);
  const std::string base = demo_config({slapd().uri()}, {{"listen", "\"" + listen + "\""}});
  const ConfigFile config(base);
  harness::Process server(
      {chainmail_bin().string(), "socketmap", "--config", config.path().string(), "--listen", listen},
      config.dir() / "socketmap.log");
  ASSERT_TRUE(harness::wait_for_port(port, seconds(10))) << read_text(server.log_path());

  RawClient before(port);
  EXPECT_EQ(before.request("route newalias@pydis.wtf"), "NOTFOUND ");

  std::string with_alias = base;
  const auto at = with_alias.find("[aliases]\n");
  ASSERT_NE(at, std::string::npos);
  with_alias.insert(at + 10, "newalias = \"alice\"\n");
  { std::ofstream(config.path()) << with_alias; }
  ASSERT_EQ(::kill(server.pid(), SIGHUP), 0);
  std::optional<std::string> got;
  for (int i = 0; i < 100 && got != "OK alice@localhost"; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    got = RawClient(port).request("route newalias@pydis.wtf");
  }
  EXPECT_EQ(got, "OK alice@localhost") << read_text(server.log_path());
  EXPECT_EQ(before.request("route alice@pydis.wtf"), "OK alice@localhost")
      << "open connections survive a reload";

  { std::ofstream(config.path()) << "[directory]\nnot valid toml = = =\n"; }
  ASSERT_EQ(::kill(server.pid(), SIGHUP), 0);
  for (int i = 0; i < 100 && read_text(server.log_path()).find("reload failed") == std::string::npos; ++i)
    std::this_thread::sleep_for(milliseconds(50));
  EXPECT_NE(read_text(server.log_path()).find("reload failed"), std::string::npos);
  EXPECT_EQ(RawClient(port).request("route newalias@pydis.wtf"), "OK alice@localhost");
  EXPECT_EQ(server.terminate(std::chrono::seconds(30)), 0) << read_text(server.log_path());
}

}  // namespace
}  // namespace chainmail::integration
