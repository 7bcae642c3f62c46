#include "adapters/socketmap_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/netstring.h"

namespace chainmail {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The fake map: "route" knows one address, "echo" returns its key, "big N" returns an N+3 octet reply,
// "throw" throws, anything else is a configuration error.
std::string fake_handler(std::string_view name, std::string_view key) {
  if (name == "route") return key == "a@b" ? "OK a@b,c@d" : "NOTFOUND ";
  if (name == "echo") return "OK " + std::string(key);
  if (name == "big") return "OK " + std::string(std::stoul(std::string(key)), 'x');
  if (name == "throw") throw std::runtime_error("boom");
  return "PERM unknown map " + std::string(name);
}

class Client {
 public:
  struct Read {
    enum Kind { reply, closed, timeout } kind;
    std::string payload;
  };

  static Client tcp(std::uint16_t port) {
    Client c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    ::setsockopt(c.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c.fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }
    return c;
  }

  static Client unix_socket(const std::string& path) {
    Client c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    if (::connect(c.fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }
    return c;
  }

  Client(Client&& other) noexcept : fd_(std::exchange(other.fd_, -1)), decoder_(std::move(other.decoder_)) {}
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client& operator=(Client&&) = delete;
  ~Client() { close(); }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // False when the server has closed the connection.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  Read read(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    std::string out;
    std::array<char, 4096> chunk{};
    for (;;) {
      if (decoder_.next(out) == NetstringDecoder::Status::complete) return {Read::reply, out};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return {Read::timeout, {}};
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      const ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), 0);
      if (n <= 0) return {Read::closed, {}};  // EOF or ECONNRESET
      decoder_.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
    }
  }

  // Sends one request and returns the reply payload, or a marker when there is none.
  std::string ask(std::string_view request) {
    if (!send(netstring_encode(request))) return "<send failed>";
    const Read r = read();
    if (r.kind == Read::closed) return "<closed>";
    if (r.kind == Read::timeout) return "<timeout>";
    return r.payload;
  }

 private:
  explicit Client(int fd) : fd_(fd) {
    if (fd_ < 0) throw std::runtime_error("socket failed");
  }
  int fd_;
  NetstringDecoder decoder_{1 << 24};
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "smap.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

SocketmapOptions tcp_options() {
  SocketmapOptions o;
  o.listen = "inet:127.0.0.1:0";
  o.max_reply = 1000;
  return o;
}

std::unique_ptr<SocketmapServer> started(SocketmapOptions options) {
  auto server = std::make_unique<SocketmapServer>(std::move(options), fake_handler);
  server->start();
  return server;
}

struct Case {
  std::string request;
  std::string reply;
};

std::vector<Case> cases() {
  return {
      {"route a@b", "OK a@b,c@d"},
      {"route nobody@b", "NOTFOUND "},
      {"echo key with spaces", "OK key with spaces"},
      {"echo \x01\xff", "OK \x01\xff"},
      {"other x", "PERM unknown map other"},
      {"route", "PERM malformed request"},
      {"", "PERM malformed request"},
      {" a@b", "PERM malformed request"},
      {"route ", "PERM empty key"},
      {"throw x", "TEMP internal error"},
      {"big 997", "OK " + std::string(997, 'x')},  // exactly max_reply
      {"big 998", "TEMP reply too large"},
  };
}

void expect_cases(Client& client) {
  for (const Case& c : cases()) EXPECT_EQ(client.ask(c.request), c.reply) << "request: " << c.request;
}

TEST(SocketmapServer, AnswersOverTcpOnOnePersistentConnection) {
  auto server = started(tcp_options());
  ASSERT_NE(server->port(), 0);
  Client client = Client::tcp(server->port());
  expect_cases(client);
}

TEST(SocketmapServer, AnswersOverUnixSocketReplacingAStaleOne) {
  TempDir dir;
  const std::string path = dir.file("socketmap");
  {  // leave a stale socket behind, as a crashed server would
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
    ::close(fd);
  }
  SocketmapOptions o = tcp_options();
  o.listen = "unix:" + path;
  auto server = started(o);
  EXPECT_EQ(server->port(), 0);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  Client client = Client::unix_socket(path);
  expect_cases(client);

  SocketmapServer second(o, fake_handler);  // a live server is not stale
  EXPECT_THROW(second.start(), std::runtime_error);

  server->stop();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SocketmapServer, StartFailsClearly) {
  TempDir dir;
  std::ofstream(dir.file("plain")) << "not a socket";
  auto busy = started(tcp_options());
  const std::vector<std::string> bad = {
      "",
      "tcp:127.0.0.1:1",
      "inet:127.0.0.1",
      "inet:127.0.0.1:",
      "inet:127.0.0.1:65536",
      "inet:127.0.0.1:12a",
      "inet:192.0.2.1:0",  // not an address of this host
      "inet:127.0.0.1:" + std::to_string(busy->port()),
      "unix:",
      "unix:" + dir.file("plain"),
      "unix:" + dir.file("missing/dir/socket"),
      "unix:/" + std::string(200, 'x'),
  };
  for (const std::string& listen : bad) {
    SocketmapOptions o = tcp_options();
    o.listen = listen;
    SocketmapServer server(o, fake_handler);
    try {
      server.start();
      ADD_FAILURE() << "started on " << listen;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(listen), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(std::filesystem::exists(dir.file("plain")));  // never removed
}

TEST(SocketmapServer, StartTwiceFails) {
  auto server = started(tcp_options());
  EXPECT_THROW(server->start(), std::runtime_error);
}

TEST(SocketmapServer, AnswersPipelinedRequestsInOrder) {
  auto server = started(tcp_options());
  Client client = Client::tcp(server->port());
  std::string wire;
  for (const Case& c : cases()) wire += netstring_encode(c.request);
  ASSERT_TRUE(client.send(wire));
  for (const Case& c : cases()) {
    const Client::Read r = client.read();
    ASSERT_EQ(r.kind, Client::Read::reply) << c.request;
    EXPECT_EQ(r.payload, c.reply) << c.request;
  }
}

TEST(SocketmapServer, AssemblesARequestSentByteByByte) {
  auto server = started(tcp_options());
  Client client = Client::tcp(server->port());
  const std::string wire = netstring_encode("route a@b") + netstring_encode("echo z");
  for (const char c : wire) {
    ASSERT_TRUE(client.send(std::string_view(&c, 1)));
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(client.read().payload, "OK a@b,c@d");
  EXPECT_EQ(client.read().payload, "OK z");
}

TEST(SocketmapServer, ClosesOnBadNetstringWhileOthersAreServed) {
  auto server = started(tcp_options());
  Client other = Client::tcp(server->port());
  ASSERT_EQ(other.ask("route a@b"), "OK a@b,c@d");
  const std::vector<std::string> bad = {"abc,", "05:route,", "8:route a@b,", ":x,", "-1:,", "3:a b!", "1x:"};
  for (const std::string& wire : bad) {
    Client client = Client::tcp(server->port());
    ASSERT_EQ(client.ask("route a@b"), "OK a@b,c@d");
    client.send(wire + netstring_encode("route a@b"));
    EXPECT_EQ(client.read().kind, Client::Read::closed) << wire;
    EXPECT_EQ(other.ask("route x@y"), "NOTFOUND ") << wire;
  }
}

TEST(SocketmapServer, ClosesOnOversizedRequest) {
  SocketmapOptions o = tcp_options();
  o.max_request = 100;
  auto server = started(o);
  {
    Client client = Client::tcp(server->port());
    EXPECT_EQ(client.ask("echo " + std::string(95, 'k')), "OK " + std::string(95, 'k'));  // exactly 100
    client.send(netstring_encode("echo " + std::string(96, 'k')));
    EXPECT_EQ(client.read().kind, Client::Read::closed);
  }
  {
    Client client = Client::tcp(server->port());
    client.send("99999999999999999999999999:");  // length alone is over the limit
    EXPECT_EQ(client.read().kind, Client::Read::closed);
  }
}

TEST(SocketmapServer, SurvivesAClientThatLeavesWithoutReading) {
  SocketmapOptions o = tcp_options();
  o.max_reply = 100000;
  auto server = started(o);
  {
    Client client = Client::tcp(server->port());
    std::string wire;
    for (int i = 0; i < 200; ++i) wire += netstring_encode("big 99000");
    client.send(wire);
  }  // closed with ~20 MB of replies pending: the server sees EPIPE or ECONNRESET
  Client other = Client::tcp(server->port());
  EXPECT_EQ(other.ask("route a@b"), "OK a@b,c@d");
}

TEST(SocketmapServer, DropsASilentClientWithoutDelayingOthers) {
  SocketmapOptions o = tcp_options();
  o.idle_timeout = 200ms;
  auto server = started(o);
  const auto t0 = Clock::now();
  Client silent = Client::tcp(server->port());
  Client busy = Client::tcp(server->port());
  while (Clock::now() - t0 < 150ms) {  // served promptly while `silent` holds its connection
    const auto asked = Clock::now();
    EXPECT_EQ(busy.ask("route a@b"), "OK a@b,c@d");
    EXPECT_LT(Clock::now() - asked, 100ms);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(silent.read(3s).kind, Client::Read::closed);
  const auto elapsed = Clock::now() - t0;
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 2s);
}

TEST(SocketmapServer, DropsAClientTricklingARequest) {
  SocketmapOptions o = tcp_options();
  o.idle_timeout = 200ms;
  auto server = started(o);
  Client slow = Client::tcp(server->port());
  ASSERT_EQ(slow.ask("route a@b"), "OK a@b,c@d");  // a complete request restarts the clock
  slow.send("50:route ");
  for (int i = 0; i < 10; ++i) {  // 500 ms of one byte every 50 ms
    std::this_thread::sleep_for(50ms);
    slow.send("a");
  }
  // Dropped 200 ms after the last reply, not 200 ms after the last byte.
  EXPECT_EQ(slow.read(100ms).kind, Client::Read::closed);
}

TEST(SocketmapServer, QueuesClientsBeyondMaxClients) {
  SocketmapOptions o = tcp_options();
  o.max_clients = 2;
  auto server = started(o);
  Client first = Client::tcp(server->port());
  Client second = Client::tcp(server->port());
  ASSERT_EQ(first.ask("route a@b"), "OK a@b,c@d");
  ASSERT_EQ(second.ask("route a@b"), "OK a@b,c@d");
  Client third = Client::tcp(server->port());  // the kernel completes the handshake: it waits in the backlog
  ASSERT_TRUE(third.send(netstring_encode("echo third")));
  EXPECT_EQ(third.read(300ms).kind, Client::Read::timeout);
  first.close();
  const Client::Read r = third.read();
  EXPECT_EQ(r.kind, Client::Read::reply);
  EXPECT_EQ(r.payload, "OK third");
  EXPECT_EQ(second.ask("echo still"), "OK still");
}

TEST(SocketmapServer, ServesManyClientsAtOnce) {
  auto server = started(tcp_options());
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Client client = Client::tcp(server->port());
      for (int i = 0; i < 50; ++i) {
        const std::string key = std::to_string(t) + "/" + std::to_string(i);
        if (client.ask("echo " + key) == "OK " + key) ++good;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(good, 8 * 50);
}

TEST(SocketmapServer, StopWithOpenConnectionsIsPrompt) {
  auto server = started(tcp_options());  // idle_timeout 30 s: only stop() ends these
  Client idle = Client::tcp(server->port());
  Client partial = Client::tcp(server->port());
  Client served = Client::tcp(server->port());
  ASSERT_EQ(served.ask("route a@b"), "OK a@b,c@d");
  partial.send("20:route a");
  std::this_thread::sleep_for(50ms);  // let the server accept all three
  const auto t0 = Clock::now();
  server->stop();
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_EQ(idle.read(1s).kind, Client::Read::closed);
  EXPECT_EQ(partial.read(1s).kind, Client::Read::closed);
  EXPECT_EQ(served.read(1s).kind, Client::Read::closed);
  server->stop();  // idempotent
  EXPECT_THROW(Client::tcp(server->port()), std::runtime_error);
}

TEST(SocketmapServer, WaitReturnsOnceStoppedElsewhere) {
  auto server = started(tcp_options());
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    server->stop();
  });
  server->wait();
  stopper.join();
  SocketmapServer never_started(tcp_options(), fake_handler);
  never_started.stop();
  never_started.wait();  // returns at once
  EXPECT_THROW(never_started.start(), std::runtime_error);
}

}  // namespace
}  // namespace chainmail
