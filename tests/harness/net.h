// net.h: loopback TCP helpers for starting daemons on private ports.
#pragma once

#include <chrono>
#include <cstdint>

namespace chainmail::harness {

// A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it (bind to port 0) and the socket is
// closed again. Another process may take it before the daemon binds it; ephemeral ports are picked at random,
// so that race is rare enough for tests. Never the same port twice in one process. Throws std::system_error.
std::uint16_t free_port();

// Tries to connect to 127.0.0.1:port every 10 ms until it succeeds (true) or `timeout` has passed (false).
// A stopped (SIGSTOP) daemon still "answers" here: the kernel completes the handshake from its listen
// backlog.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout);

}  // namespace chainmail::harness
