// socketmap_server.h - a server for Postfix's socketmap protocol (socketmap_table(5), dict_sockmap.c).
//
// This is what answers `postmap -q ADDR socketmap:inet:127.0.0.1:10027:route`. A client opens a persistent
// connection and sends requests; each is answered, in order, with one reply. Both are netstrings
// (core/netstring.h):
//
//   request   "NAME KEY"       NAME is everything up to the first space, KEY everything after it (it may hold
//                              more spaces, or any other octet)
//   reply     "OK VALUE"       found; VALUE is the lookup result, e.g. "a@b,c@d"
//             "NOTFOUND "      not found (the trailing space is part of the word, as Postfix sends it)
//             "TEMP REASON"    temporary trouble: Postfix defers the mail and tries again
//             "TIMEOUT REASON" the lookup took too long: treated like TEMP
//             "PERM REASON"    permanent trouble (a configuration error or a bad request)
//
// The handler chooses the reply for a well-formed request. The server itself replies:
//   "PERM malformed request"  the request has no space, or the space is its first octet (empty NAME)
//   "PERM empty key"          nothing follows the space
//   "TEMP internal error"     the handler threw
//   "TEMP reply too large"    the handler's reply is longer than max_reply (Postfix's own client refuses
//                             replies above socketmap_max_reply_size, 100000 by default)
//
// Usage:
//   SocketmapServer server({.listen = "unix:/run/chainmail/socketmap"}, [&](auto name, auto key) { ... });
//   server.start();  // throws std::runtime_error("socketmap: cannot bind inet:...: Address in use")
//   server.wait();   // until stop() is called elsewhere; the destructor stops too
//
// Each connection is served by its own thread, at most max_clients at once; further connections wait in
// the listen queue until one ends. The handler is therefore called from many threads at once and must be
// thread-safe. stop() waits for handler calls in progress to return.
//
// SECURITY: clients are not trusted and every resource they can claim is bounded. A request longer than
// max_request octets, or a netstring that does not parse, ends the connection without a reply (a netstring
// stream cannot be resynchronised). A client that is silent, or does not complete a request or read its
// replies, for idle_timeout is dropped. A client never delays another. Replies are flushed at least every
// 64 KiB, so pipelined requests cannot make the server buffer without bound. A unix socket is made
// world-writable (0666): restrict access with the permissions of its directory. A stale socket at the path
// is removed, anything else there (a file, a directory) is an error. The handler is trusted code: its reply
// is sent as it is, apart from the size cap.
//
// DIAGNOSTICS: nothing is logged here. Bad requests are answered with PERM, trouble with TEMP, and a client
// that breaks the protocol or the limits is disconnected. start() throws std::runtime_error naming the
// listen address and the system error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace chainmail {

struct SocketmapOptions {
  std::string listen;               // "inet:HOST:PORT" ("[::1]" for IPv6, PORT 0 = any) or "unix:PATH"
  std::size_t max_request = 10000;  // longer request netstring: no reply, the connection is closed
  std::size_t max_reply = 100000;   // longer handler reply: "TEMP reply too large" instead
  std::chrono::milliseconds idle_timeout{30000};  // silent client, or request/reply not done in time: close
  std::size_t max_clients = 64;                   // connections served at once; more wait in the backlog
};

class SocketmapServer {
 public:
  // Returns the full reply payload, e.g. "OK a@b,c@d", "NOTFOUND ", "TEMP why". Called from many threads at
  // once. If it throws, the client gets "TEMP internal error".
  using Handler = std::function<std::string(std::string_view name, std::string_view key)>;

  SocketmapServer(SocketmapOptions options, Handler handler);
  ~SocketmapServer();  // stop()
  SocketmapServer(const SocketmapServer&) = delete;
  SocketmapServer& operator=(const SocketmapServer&) = delete;
  SocketmapServer(SocketmapServer&&) = delete;
  SocketmapServer& operator=(SocketmapServer&&) = delete;

  // Binds and listens, then serves in background threads. Throws std::runtime_error on a bad listen
  // address, a bind/listen failure, or when called a second time.
  void start();

  // Closes the listener and every connection (removing a unix socket it created) and joins all threads.
  // Idempotent; safe to call from any thread but not from a handler or a signal handler (use a thread that
  // waits for the signal, e.g. with sigwait()).
  void stop();

  std::uint16_t port() const;  // the bound TCP port after start(); 0 for a unix socket

  // Blocks until stop() has been called (from another thread) and has finished.
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chainmail
