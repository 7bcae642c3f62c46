#include "adapters/socketmap_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/unique_fd.h"
#include "core/netstring.h"

namespace chainmail {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = 16384;  // bytes asked of recv() at a time (the decoder grows as needed)
constexpr std::size_t kFlushAt =
    std::size_t{64} * 1024;  // pipelined replies are sent once this much is pending
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);  // after EMFILE and the like

std::string errno_text(int err) {
  return std::system_category().message(err);
}

// What a poll for one socket plus the shared stop pipe found.
enum class Ready { ready, timeout, stop, error };

// Waits until `fd` has `events` (or an error/hangup, which the next recv/send reports), the stop pipe is
// readable, or `deadline` passes (none: wait without a time limit).
Ready wait_for(int fd, short events, int stop_fd, std::optional<Clock::time_point> deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      const auto left = *deadline - Clock::now();
      if (left <= Clock::duration::zero()) return Ready::timeout;
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      timeout_ms = static_cast<int>(std::min<decltype(ms)>(ms, INT_MAX));
    }
    std::array<pollfd, 2> fds{pollfd{fd, events, 0}, pollfd{stop_fd, POLLIN, 0}};
    const int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Ready::error;
    }
    if (fds[1].revents != 0) return Ready::stop;
    if (fds[0].revents != 0) return Ready::ready;
  }
}

// Sends all of `data`, coping with partial writes; false when the peer is gone, too slow, or we stop.
bool send_all(int fd, std::string_view data, int stop_fd, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_for(fd, POLLOUT, stop_fd, deadline) != Ready::ready) return false;
    } else {
      return false;  // EPIPE, ECONNRESET, ...
    }
  }
  return true;
}

// The parsed form of SocketmapOptions::listen.
struct ListenAddress {
  bool unix_socket = false;
  std::string host;  // inet: empty = every address
  std::string port;  // inet: decimal, 0-65535
  std::string path;  // unix
};

ListenAddress parse_listen(const std::string& listen) {
  const auto fail = [&](const std::string& why) {
    return std::runtime_error("socketmap: bad listen address \"" + listen + "\": " + why);
  };
  ListenAddress out;
  if (listen.starts_with("unix:")) {
    out.unix_socket = true;
    out.path = listen.substr(5);
    if (out.path.empty()) throw fail("empty path");
    if (out.path.size() >= sizeof(sockaddr_un::sun_path)) throw fail("path too long for a unix socket");
    if (out.path.find('\0') != std::string::npos) throw fail("NUL in path");
    return out;
  }
  if (!listen.starts_with("inet:")) throw fail("expected inet:HOST:PORT or unix:PATH");
  const std::string rest = listen.substr(5);
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos) throw fail("expected inet:HOST:PORT");
  out.host = rest.substr(0, colon);
  out.port = rest.substr(colon + 1);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  const bool digits =
      !out.port.empty() && out.port.size() <= 5 &&
      std::all_of(out.port.begin(), out.port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoul(out.port) > 65535) throw fail("port must be a number from 0 to 65535");
  return out;
}

}  // namespace

struct SocketmapServer::Impl {
  enum class State { idle, running, stopped };

  SocketmapOptions options;
  Handler handler;

  UniqueFd listen_fd;
  UniqueFd stop_read;  // becomes readable, for every poller at once, when stop() begins
  UniqueFd stop_write;
  bool tcp = false;
  std::string unix_path;  // a unix socket we created, removed again by stop()
  dev_t unix_dev = 0;
  ino_t unix_ino = 0;
  std::atomic<std::uint16_t> port{0};
  std::atomic<bool> stopping{false};

  struct Connection {
    std::thread thread;
    bool done = false;
  };

  std::mutex stop_mu;  // serialises stop()
  std::mutex mu;       // guards everything below
  std::condition_variable cv;
  State state = State::idle;
  std::size_t active = 0;
  std::list<Connection> connections;
  std::thread acceptor;

  void bind_inet(const ListenAddress& addr);
  void bind_unix(const ListenAddress& addr);
  void accept_loop();
  void reap();
  void serve(UniqueFd fd);
  std::string answer(const std::string& request) const;
};

void SocketmapServer::Impl::bind_inet(const ListenAddress& addr) {
  const std::string& where = options.listen;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc =
      ::getaddrinfo(addr.host.empty() ? nullptr : addr.host.c_str(), addr.port.c_str(), &hints, &found);
  if (rc != 0) {
    throw std::runtime_error("socketmap: cannot resolve " + where + ": " +
                             (rc == EAI_SYSTEM ? errno_text(errno) : std::string(::gai_strerror(rc))));
  }
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
  std::string error = "no address";
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd.valid()) {
      error = errno_text(errno);
      continue;
    }
    const int one = 1;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
      error = errno_text(errno);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
      throw std::runtime_error("socketmap: getsockname on " + where + ": " + errno_text(errno));
    }
    const in_port_t net_port = bound.ss_family == AF_INET6
                                   ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port;
    port = ntohs(net_port);
    listen_fd = std::move(fd);
    tcp = true;
    return;
  }
  throw std::runtime_error("socketmap: cannot listen on " + where + ": " + error);
}

void SocketmapServer::Impl::bind_unix(const ListenAddress& addr) {
  const std::string& where = options.listen;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, addr.path.data(), addr.path.size());  // length checked by parse_listen

  struct stat st {};
  if (::lstat(addr.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      throw std::runtime_error("socketmap: " + where + ": exists and is not a socket");
    // A socket someone still accepts on is not stale: do not steal it.
    const UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (probe.valid() && (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0 ||
                          errno == EAGAIN || errno == EINPROGRESS)) {
      throw std::runtime_error("socketmap: " + where + ": another server is listening there");
    }
    if (::unlink(addr.path.c_str()) != 0 && errno != ENOENT) {
      throw std::runtime_error("socketmap: cannot remove stale socket " + where + ": " + errno_text(errno));
    }
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) throw std::runtime_error("socketmap: socket for " + where + ": " + errno_text(errno));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    throw std::runtime_error("socketmap: cannot bind " + where + ": " + errno_text(errno));
  }
  // From here on the path is ours; remove it again if anything below fails.
  struct Unlinker {
    const std::string* path;
    ~Unlinker() {
      if (path != nullptr) ::unlink(path->c_str());
    }
  } unlinker{&addr.path};
  if (::chmod(addr.path.c_str(), 0666) != 0) {
    throw std::runtime_error("socketmap: cannot chmod " + where + ": " + errno_text(errno));
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) {
    throw std::runtime_error("socketmap: cannot listen on " + where + ": " + errno_text(errno));
  }
  if (::stat(addr.path.c_str(), &st) != 0) {
    throw std::runtime_error("socketmap: cannot stat " + where + ": " + errno_text(errno));
  }
  unlinker.path = nullptr;
  unix_path = addr.path;
  unix_dev = st.st_dev;
  unix_ino = st.st_ino;
  listen_fd = std::move(fd);
}

void SocketmapServer::Impl::reap() {
  std::list<Connection> finished;
  {
    const std::lock_guard lock(mu);
    for (auto it = connections.begin(); it != connections.end();) {
      const auto next = std::next(it);
      if (it->done) finished.splice(finished.end(), connections, it);
      it = next;
    }
  }
  for (Connection& c : finished) c.thread.join();
}

void SocketmapServer::Impl::accept_loop() {
  for (;;) {
    reap();
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stopping.load() || active < options.max_clients; });
      if (stopping) return;
    }
    const Ready r = wait_for(listen_fd.get(), POLLIN, stop_read.get(), std::nullopt);
    if (r == Ready::stop) return;
    UniqueFd fd(::accept4(listen_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED || err == EPROTO)
        continue;
      // EMFILE, ENFILE, ENOBUFS, ...: the pending connection stays queued; do not spin on it.
      if (wait_for(stop_read.get(), POLLIN, stop_read.get(), Clock::now() + kAcceptBackoff) == Ready::stop)
        return;
      continue;
    }
    if (tcp) {
      const int one = 1;
      (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    const std::lock_guard lock(mu);
    Connection& c = connections.emplace_back();
    try {
      c.thread = std::thread([this, &c, conn = std::move(fd)]() mutable {
        try {
          serve(std::move(conn));
        } catch (...) {  // out of memory and the like: drop this client, keep the server
        }
        {
          const std::lock_guard done_lock(mu);
          c.done = true;
          --active;
        }
        cv.notify_all();
      });
      ++active;
    } catch (const std::system_error&) {  // no thread to be had: the connection is closed, try again later
      connections.pop_back();
    }
  }
}

std::string SocketmapServer::Impl::answer(const std::string& request) const {
  const std::string_view req(request);
  const auto space = req.find(' ');
  if (space == std::string_view::npos || space == 0) return "PERM malformed request";
  if (space + 1 == req.size()) return "PERM empty key";
  std::string reply;
  try {
    reply = handler(req.substr(0, space), req.substr(space + 1));
  } catch (...) {
    return "TEMP internal error";
  }
  if (reply.size() > options.max_reply) return "TEMP reply too large";
  return reply;
}

void SocketmapServer::Impl::serve(UniqueFd fd) {
  NetstringDecoder decoder(options.max_request);
  std::vector<char> chunk(kReadChunk);
  std::string request;
  std::string pending;  // encoded replies not yet sent
  auto deadline = Clock::now() + options.idle_timeout;
  for (;;) {
    for (;;) {
      const auto status = decoder.next(request);
      if (status == NetstringDecoder::Status::error) return;  // cannot resync: close without a reply
      if (status == NetstringDecoder::Status::need_more) break;
      if (stopping) return;
      pending += netstring_encode(answer(request));
      if (pending.size() >= kFlushAt) {
        if (!send_all(fd.get(), pending, stop_read.get(), Clock::now() + options.idle_timeout)) return;
        pending.clear();
      }
    }
    if (!pending.empty()) {
      if (!send_all(fd.get(), pending, stop_read.get(), Clock::now() + options.idle_timeout)) return;
      pending.clear();
      deadline = Clock::now() + options.idle_timeout;  // the next request has a full idle_timeout
    }
    if (wait_for(fd.get(), POLLIN, stop_read.get(), deadline) != Ready::ready) return;
    const ssize_t n = ::recv(fd.get(), chunk.data(), chunk.size(), 0);
    if (n == 0) return;  // the client closed
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return;
    }
    decoder.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
  }
}

SocketmapServer::SocketmapServer(SocketmapOptions options, Handler handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

SocketmapServer::~SocketmapServer() {
  stop();
}

void SocketmapServer::start() {
  Impl& s = *impl_;
  {
    const std::lock_guard lock(s.mu);
    if (s.state != Impl::State::idle) throw std::runtime_error("socketmap: start() called twice");
  }
  if (!s.handler) throw std::runtime_error("socketmap: no handler");
  if (s.options.max_clients == 0) throw std::runtime_error("socketmap: max_clients must be at least 1");
  if (s.options.idle_timeout <= std::chrono::milliseconds::zero()) {
    throw std::runtime_error("socketmap: idle_timeout must be positive");
  }
  const ListenAddress addr = parse_listen(s.options.listen);

  std::array<int, 2> pipe_fds{-1, -1};
  if (::pipe2(pipe_fds.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error("socketmap: pipe: " + errno_text(errno));
  }
  s.stop_read = UniqueFd(pipe_fds[0]);
  s.stop_write = UniqueFd(pipe_fds[1]);

  if (addr.unix_socket) {
    s.bind_unix(addr);
  } else {
    s.bind_inet(addr);
  }
  const std::lock_guard lock(s.mu);
  s.acceptor = std::thread([&s] { s.accept_loop(); });
  s.state = Impl::State::running;
}

void SocketmapServer::stop() {
  Impl& s = *impl_;
  const std::lock_guard stop_lock(s.stop_mu);
  {
    const std::lock_guard lock(s.mu);
    if (s.state == Impl::State::stopped) return;
    s.stopping = true;
  }
  if (s.stop_write.valid()) {
    const char byte = 0;
    (void)!::write(s.stop_write.get(), &byte, 1);
  }
  s.cv.notify_all();
  if (s.acceptor.joinable()) s.acceptor.join();
  // No more connections can start now.
  s.listen_fd.reset();
  if (!s.unix_path.empty()) {
    struct stat st {};
    if (::lstat(s.unix_path.c_str(), &st) == 0 && st.st_dev == s.unix_dev && st.st_ino == s.unix_ino) {
      ::unlink(s.unix_path.c_str());
    }
    s.unix_path.clear();
  }
  std::list<Impl::Connection> connections;
  {
    const std::lock_guard lock(s.mu);
    connections.swap(s.connections);
  }
  for (Impl::Connection& c : connections) c.thread.join();
  {
    const std::lock_guard lock(s.mu);
    s.state = Impl::State::stopped;
  }
  s.cv.notify_all();
}

std::uint16_t SocketmapServer::port() const {
  return impl_->port;
}

void SocketmapServer::wait() {
  Impl& s = *impl_;
  std::unique_lock lock(s.mu);
  s.cv.wait(lock, [&] { return s.state == Impl::State::stopped; });
}

}  // namespace chainmail
