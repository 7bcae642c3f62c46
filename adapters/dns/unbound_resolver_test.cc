// unbound_resolver_test.cc - UnboundResolver against a real unbound server (/usr/sbin/unbound) started by the
// test.
//
// The server runs in the foreground (-d) as a child process on a free 127.0.0.1 port, answering from
// local-data (local-zone static: a missing name is NXDOMAIN, a missing type NOERROR/NODATA). It compresses
// names in MX and PTR rdata on the wire, so these tests also prove libunbound hands us uncompressed rdata. A
// stopped (SIGSTOP) server stands in for a hung one; a port nobody listens on for a dead one.
#include "adapters/dns/unbound_resolver.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/dns/rdata.h"
#include "harness/net.h"
#include "harness/process.h"
#include "harness/temp_dir.h"

namespace chainmail::dns {
namespace {

using Status = Answer::Status;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr int kThreads = 16;
constexpr int kQueriesPerThread = 200;

std::string load_name(int thread, int i) {
  std::string s = "q";
  s += std::to_string(thread);
  s += "-";
  s += std::to_string(i);
  s += ".load.chainmail.example";
  return s;
}

std::string load_address(int thread, int i) {
  std::string s = "10.";
  s += std::to_string(thread);
  s += ".";
  s += std::to_string(i / 256);
  s += ".";
  s += std::to_string(i % 256);
  return s;
}

// 255 + 255 + 40 characters: one TXT record made of three character-strings.
std::string long_txt_part(int i) {
  return i < 2 ? std::string(255, i == 0 ? 'a' : 'b') : std::string(40, 'c');
}

class UnboundServer {
 public:
  UnboundServer() : dir_("unbound"), port_(harness::free_port()) {
    std::ofstream conf(dir_.path() / "unbound.conf");
    conf << "server:\n"
         << "  interface: 127.0.0.1\n  port: " << port_ << "\n"
         << "  do-ip6: no\n  chroot: \"\"\n  username: \"\"\n  directory: \"" << dir_.path().string()
         << "\"\n"
         << "  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  do-daemonize: no\n"
         << "  num-threads: 1\n  access-control: 127.0.0.0/8 allow\n  module-config: \"iterator\"\n"
         << "  local-zone: \"chainmail.example.\" static\n"
         << "  local-zone: \"18.198.in-addr.arpa.\" static\n"
         << "  local-data: \"a.chainmail.example. 300 IN A 192.0.2.1\"\n"
         << "  local-data: \"a.chainmail.example. 300 IN A 192.0.2.2\"\n"
         << "  local-data: \"six.chainmail.example. 300 IN AAAA 2001:db8::1\"\n"
         << "  local-data: \"chainmail.example. 300 IN MX 10 mail.chainmail.example.\"\n"
         << "  local-data: \"chainmail.example. 300 IN MX 20 backup.mail.chainmail.example.\"\n"
         << "  local-data: \"mail.chainmail.example. 300 IN A 192.0.2.25\"\n"
         << "  local-data: 'long.chainmail.example. 300 IN TXT \"" << long_txt_part(0) << "\" \""
         << long_txt_part(1) << "\" \"" << long_txt_part(2) << "\"'\n"
         << "  local-data-ptr: \"198.18.0.1 host.chainmail.example.\"\n";
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kQueriesPerThread; i += 2) {  // odd i stay NXDOMAIN
        conf << "  local-data: \"" << load_name(t, i) << ". 300 IN A " << load_address(t, i) << "\"\n";
      }
    }
    conf << "remote-control:\n  control-enable: no\n";
    conf.close();
    process_ = harness::Process({"unbound", "-d", "-c", (dir_.path() / "unbound.conf").string()},
                                dir_.path() / "unbound.log");
    if (!harness::wait_for_port(port_, std::chrono::seconds(10))) {
      ADD_FAILURE() << "unbound did not start; see " << process_.log_path();
      return;
    }
    // The port opens before unbound has loaded its local data: wait for a real answer, with a resolver of
    // its own so the tests' resolvers start with nothing cached.
    UnboundOptions probe_options;
    probe_options.forwarders = {forwarder()};
    probe_options.timeout_ms = 200;
    UnboundResolver probe(probe_options);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (probe.resolve("a.chainmail.example", RrType::a).status != Answer::Status::found) {
      if (Clock::now() > deadline) {
        ADD_FAILURE() << "unbound does not answer; see " << process_.log_path();
        return;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  std::string forwarder() const { return "127.0.0.1@" + std::to_string(port_); }
  harness::Process& process() { return process_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  harness::TempDir dir_;
  std::uint16_t port_;
  harness::Process process_;
};

class UnboundResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new UnboundServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  static UnboundOptions options(std::int64_t timeout_ms = 5000) {
    UnboundOptions o;
    o.forwarders = {server_->forwarder()};
    o.timeout_ms = timeout_ms;
    return o;
  }

  static UnboundServer* server_;
};

UnboundServer* UnboundResolverTest::server_ = nullptr;

std::string ip4(const std::string& rdata) {
  char buf[INET_ADDRSTRLEN] = {};
  if (rdata.size() != 4 || inet_ntop(AF_INET, rdata.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

TEST_F(UnboundResolverTest, FoundNodataNxdomain) {
  UnboundResolver resolver(options());

  const Answer a = resolver.resolve("a.chainmail.example", RrType::a);
  ASSERT_EQ(a.status, Status::found) << a.why;
  ASSERT_EQ(a.records.size(), 2u);
  std::vector<std::string> got = {ip4(a.records[0]), ip4(a.records[1])};
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
  EXPECT_FALSE(a.secure);  // no trust anchor

  const Answer six = resolver.resolve("six.chainmail.example.", RrType::aaaa);
  ASSERT_EQ(six.status, Status::found) << six.why;
  ASSERT_EQ(six.records.size(), 1u);
  char buf[INET6_ADDRSTRLEN] = {};
  ASSERT_EQ(six.records[0].size(), 16u);
  ASSERT_NE(inet_ntop(AF_INET6, six.records[0].data(), buf, sizeof buf), nullptr);
  EXPECT_STREQ(buf, "2001:db8::1");

  EXPECT_EQ(resolver.resolve("six.chainmail.example", RrType::a).status, Status::nodata);
  EXPECT_EQ(resolver.resolve("a.chainmail.example", RrType::txt).status, Status::nodata);
  EXPECT_EQ(resolver.resolve("nothing.chainmail.example", RrType::a).status, Status::nxdomain);
  EXPECT_EQ(resolver.resolve("nothing.chainmail.example", RrType::txt).status, Status::nxdomain);
}

TEST_F(UnboundResolverTest, MxAndPtrRdataIsUncompressed) {
  UnboundResolver resolver(options());

  const Answer mx = resolver.resolve("chainmail.example", RrType::mx);
  ASSERT_EQ(mx.status, Status::found) << mx.why;
  ASSERT_EQ(mx.records.size(), 2u);
  std::vector<std::pair<int, std::string>> got;
  for (const auto& r : mx.records) {
    const auto decoded = decode_mx(r);  // refuses compression pointers
    ASSERT_TRUE(decoded) << "MX rdata not uncompressed wire format, size " << r.size();
    got.emplace_back(decoded->preference, decoded->exchange);
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::pair<int, std::string>>{{10, "mail.chainmail.example"},
                                                           {20, "backup.mail.chainmail.example"}}));

  const Answer ptr = resolver.resolve("1.0.18.198.in-addr.arpa", RrType::ptr);
  ASSERT_EQ(ptr.status, Status::found) << ptr.why;
  ASSERT_EQ(ptr.records.size(), 1u);
  EXPECT_EQ(decode_name(ptr.records[0]), "host.chainmail.example");
}

TEST_F(UnboundResolverTest, LongTxtKeepsItsCharacterStrings) {
  UnboundResolver resolver(options());
  const Answer txt = resolver.resolve("long.chainmail.example", RrType::txt);
  ASSERT_EQ(txt.status, Status::found) << txt.why;
  ASSERT_EQ(txt.records.size(), 1u);
  const std::string& rdata = txt.records[0];
  ASSERT_EQ(rdata.size(), 550u + 3u);  // three length bytes
  EXPECT_EQ(static_cast<unsigned char>(rdata[0]), 255);
  EXPECT_EQ(static_cast<unsigned char>(rdata[256]), 255);
  EXPECT_EQ(static_cast<unsigned char>(rdata[512]), 40);
  EXPECT_EQ(decode_txt(rdata), long_txt_part(0) + long_txt_part(1) + long_txt_part(2));
}

TEST_F(UnboundResolverTest, ManyThreadsEachGetTheirOwnAnswers) {
  UnboundResolver resolver(options());
  std::atomic<int> wrong{0};
  std::atomic<int> checked{0};
  std::vector<std::string> first_error(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  const auto start = Clock::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kQueriesPerThread; ++i) {
        const Answer a = resolver.resolve(load_name(t, i), RrType::a);
        bool ok = false;
        if (i % 2 == 0) {
          ok = a.status == Status::found && a.records.size() == 1 && ip4(a.records[0]) == load_address(t, i);
        } else {
          ok = a.status == Status::nxdomain && a.records.empty();
        }
        ++checked;
        if (!ok) {
          if (wrong++ == 0 || first_error[t].empty()) {
            first_error[t] = load_name(t, i);
            first_error[t] += ": status ";
            first_error[t] += std::to_string(static_cast<int>(a.status));
            first_error[t] += " ";
            first_error[t] += a.why;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  EXPECT_EQ(checked.load(), kThreads * kQueriesPerThread);
  EXPECT_EQ(wrong.load(), 0);
  for (const auto& e : first_error) {
    if (!e.empty()) ADD_FAILURE() << e;
  }
  std::printf("[ measure  ] %d threads x %d queries: %lld ms\n", kThreads, kQueriesPerThread,
              static_cast<long long>(elapsed.count()));
}

TEST_F(UnboundResolverTest, HungServerIsTroubleWithinTheTimeoutForEveryCaller) {
  // A private server, so stopping it cannot disturb the other tests.
  UnboundServer hung;
  UnboundOptions o;
  o.forwarders = {hung.forwarder()};
  o.timeout_ms = 300;
  UnboundResolver resolver(o);
  ASSERT_EQ(resolver.resolve("a.chainmail.example", RrType::a).status, Status::found);  // alive and cached

  hung.process().pause();
  constexpr int kCallers = 8;
  std::vector<Answer> answers(kCallers);
  std::vector<milliseconds> took(kCallers);
  std::vector<std::thread> threads;
  threads.reserve(kCallers);
  for (int c = 0; c < kCallers; ++c) {
    threads.emplace_back([&, c] {
      const auto start = Clock::now();
      answers[c] = resolver.resolve(load_name(c, 0), RrType::a);  // not cached
      took[c] = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    });
  }
  for (auto& th : threads) th.join();
  for (int c = 0; c < kCallers; ++c) {
    EXPECT_EQ(answers[c].status, Status::trouble) << c;
    EXPECT_NE(answers[c].why.find("timeout"), std::string::npos) << answers[c].why;
    EXPECT_GE(took[c].count(), 290) << c;
    EXPECT_LT(took[c].count(), 1000) << c;
  }
  // Cached answers are still served while the forwarder hangs.
  EXPECT_EQ(resolver.resolve("a.chainmail.example", RrType::a).status, Status::found);
  hung.process().resume();
}

TEST_F(UnboundResolverTest, DeadServerIsTroubleWithinTheTimeout) {
  UnboundOptions o;
  o.forwarders = {"127.0.0.1@" + std::to_string(harness::free_port())};  // nobody listens there
  o.timeout_ms = 400;
  UnboundResolver resolver(o);
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    const Answer a = resolver.resolve("a.chainmail.example", RrType::a);
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    EXPECT_EQ(a.status, Status::trouble);
    EXPECT_FALSE(a.why.empty());
    EXPECT_LT(took.count(), 1000);
  }
}

TEST_F(UnboundResolverTest, BogusAnswersAreTroubleNotData) {
  // A trust anchor for chainmail.example. that the (unsigned) local data cannot satisfy: every answer below
  // it is bogus.
  const auto anchor = server_->dir() / "bogus.anchor";
  std::ofstream(anchor) << "chainmail.example. 3600 IN DS 12345 13 2 " << std::string(64, 'a') << "\n";
  UnboundOptions o = options();
  o.trust_anchor_file = anchor.string();
  UnboundResolver resolver(o);
  const Answer a = resolver.resolve("a.chainmail.example", RrType::a);
  EXPECT_EQ(a.status, Status::trouble);
  EXPECT_TRUE(a.records.empty());
  EXPECT_NE(a.why.find("bogus"), std::string::npos) << a.why;
}

TEST(UnboundResolverOptions, BadOptionsThrowWithTheReason) {
  struct Case {
    UnboundOptions options;
    const char* mentions;
  };
  std::vector<Case> cases;
  cases.push_back({{{"not-an-address"}, "", 1000}, "not-an-address"});
  cases.push_back({{{"127.0.0.1@"}, "", 1000}, "port"});
  cases.push_back({{{"127.0.0.1@70000"}, "", 1000}, "port"});
  cases.push_back({{{"127.0.0.1@53x"}, "", 1000}, "port"});
  cases.push_back({{{"::1@53", "1.2.3"}, "", 1000}, "1.2.3"});
  cases.push_back({{{"127.0.0.1"}, "/nonexistent/root.key", 1000}, "/nonexistent/root.key"});
  cases.push_back({{{"127.0.0.1"}, "", 0}, "timeout"});
  for (const auto& c : cases) {
    try {
      UnboundResolver resolver(c.options);
      ADD_FAILURE() << "no exception; expected one mentioning " << c.mentions;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(c.mentions), std::string::npos) << e.what();
    }
  }
  // IPv4 and IPv6 forwarders with ports are accepted.
  EXPECT_NO_THROW(UnboundResolver({{"127.0.0.1@5353", "::1", "::1@53"}, "", 1000}));
}

}  // namespace
}  // namespace chainmail::dns
