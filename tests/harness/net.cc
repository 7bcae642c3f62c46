// net.cc: see net.h.
#include "harness/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "adapters/unique_fd.h"

namespace chainmail::harness {
namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A port the kernel considers free now.
std::uint16_t pick_port() {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) throw std::system_error(errno, std::generic_category(), "free_port: socket");
  sockaddr_in addr = loopback(0);
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::system_error(errno, std::generic_category(), "free_port: bind 127.0.0.1:0");
  }
  socklen_t len = sizeof addr;
  if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::system_error(errno, std::generic_category(), "free_port: getsockname");
  }
  return ntohs(addr.sin_port);
}

}  // namespace

// The kernel may pick the same free port twice in a row (nothing holds it between the calls), and a test
// that asks for two ports, then starts one daemon on both, fails with EADDRINUSE. So this process never
// hands out a port twice.
std::uint16_t free_port() {
  static std::mutex mu;
  static std::set<std::uint16_t> given;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::uint16_t port = pick_port();
    const std::lock_guard lock(mu);
    if (given.insert(port).second) return port;
  }
  throw std::runtime_error("free_port: the kernel keeps picking ports this process already handed out");
}

bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const sockaddr_in addr = loopback(port);
  while (true) {
    // A fresh socket per attempt: after a failed connect() the socket's state is unspecified.
    UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (sock.get() < 0) throw std::system_error(errno, std::generic_category(), "wait_for_port: socket");
    // Loopback connect() never blocks for long: it is accepted or refused at once.
    if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace chainmail::harness
