// main.cc - chainmail-milter: the libmilter daemon around milter/session.
//
// Usage: chainmail-milter [--config FILE] [--listen SPEC]
// Runs in the foreground (systemd, or a test harness, supervises it). Listens on milter.listen (libmilter
// syntax: unix:PATH or inet:PORT@HOST) and, when socketmap.listen is set, serves Postfix's socketmap there
// from the same directory connections and cache. Opens its sockets, then drops to milter.user.
//
// Signals: SIGTERM or SIGINT stop it (connections in progress are given libmilter's grace time); SIGHUP
// reloads chainmail.conf: new messages use the new runtime, messages in flight finish on theirs, a bad file
// keeps the running configuration. A handler on the three signals writes the signal number to a self-pipe
// that the main thread reads; it may run in any thread that does not block them, and does nothing else.
// libmilter's own signal thread would sigwait() for the same signals and stop the milter on SIGHUP;
// libmilter_signals.cc parks it. If smfi_main returns without being asked to (its listener failed), the
// libmilter thread writes 0 to the pipe so the daemon exits instead of serving only the socketmap.
//
// Every libmilter callback is a noexcept shim (guard()): an exception tempfails the message with 451 4.3.0
// and a log line; nothing is accepted unchecked and the daemon keeps running.
//
// Over TCP, libmilter writes each reply of end-of-message (header edits, recipient edits, the verdict) as a
// separate small packet; with Nagle's algorithm and the MTA's delayed ACK, the last one waits ~40 ms. Linux
// accepted sockets inherit TCP_NODELAY from the listener, so it is set on libmilter's listening socket.
//
// Exit status: 0 after a signal; 78 (EX_CONFIG) for a bad configuration; 69 (EX_UNAVAILABLE) when a socket
// cannot be opened or privileges cannot be dropped; 70 (EX_SOFTWARE) when libmilter stops unasked.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "adapters/config_loader.h"
#include "adapters/mime/from_header.h"
#include "adapters/socketmap_server.h"
#include "core/route_format.h"
#include "core/senders.h"
#include "milter/log.h"
#include "milter/runtime.h"
#include "milter/session.h"

namespace chainmail::milter {
namespace {

// The process state the callbacks reach. libmilter's callbacks carry no user pointer besides the per-
// connection private data, so this one object is file-static; it is set up before smfi_main starts.
struct Daemon {
  std::unique_ptr<Log> log;
  std::unique_ptr<Engines> engines;
  std::mutex mu;
  std::shared_ptr<const Runtime> runtime;

  std::shared_ptr<const Runtime> current() {
    const std::lock_guard lock(mu);
    return runtime;
  }
};
Daemon* g_daemon = nullptr;

// The self-pipe that carries signals from the handler to the main loop.
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int sig) {
  const auto byte = static_cast<unsigned char>(sig);
  const int saved = errno;
  [[maybe_unused]] const auto n = ::write(g_signal_pipe[1], &byte, 1);  // async-signal-safe
  errno = saved;
}

const std::array<int, 3> kSignals = {SIGHUP, SIGTERM, SIGINT};

// Blocks the daemon's signals in the calling thread (the libmilter thread, so that its connection threads
// never run the handler in the middle of libmilter's work).
void block_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kSignals) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

bool install_signal_handlers() {
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) return false;
  fcntl(g_signal_pipe[1], F_SETFL, O_NONBLOCK);  // a full pipe drops a signal rather than hang the handler
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : kSignals) {
    if (sigaction(sig, &sa, nullptr) != 0) return false;
  }
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}

// Written to the self-pipe by the libmilter thread when smfi_main returns.
constexpr int kMilterStopped = 0;

void notify_milter_stopped() {
  const auto byte = static_cast<unsigned char>(kMilterStopped);
  [[maybe_unused]] const auto n = ::write(g_signal_pipe[1], &byte, 1);
}

// The next signal from the self-pipe, or kMilterStopped.
int next_signal() {
  unsigned char byte = 0;
  while (true) {
    const auto n = ::read(g_signal_pipe[0], &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return SIGTERM;  // the pipe broke: nothing sensible is left but stopping
  }
}

// Per connection: the session, and the protocol flags the MTA agreed to (a callback may only answer
// SMFIS_NOREPLY for a step whose SMFIP_NR_* flag was negotiated).
struct Connection {
  Session session;
  unsigned long protocol = 0;
};

Connection* connection_of(SMFICTX* ctx) {
  return static_cast<Connection*>(smfi_getpriv(ctx));
}
Session* session_of(SMFICTX* ctx) {
  Connection* c = connection_of(ctx);
  return c != nullptr ? &c->session : nullptr;
}

Connection* open_connection(SMFICTX* ctx) {
  if (Connection* c = connection_of(ctx)) return c;
  auto* c = new Connection{Session([] { return g_daemon->current(); }, *g_daemon->log)};
  smfi_setpriv(ctx, c);
  return c;
}

sfsistat no_reply(SMFICTX* ctx, unsigned long flag) {
  const Connection* c = connection_of(ctx);
  return c != nullptr && (c->protocol & flag) != 0 ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

std::string macro(SMFICTX* ctx, const char* name) {
  const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
  return v != nullptr ? v : "";
}

// libmilter's reply text is printf-like in some MTAs; keep '%' out of it.
std::string reply_text(std::string s) {
  std::replace(s.begin(), s.end(), '%', '?');
  return s;
}

sfsistat to_status(SMFICTX* ctx, const Reply& r) {
  if (r.status == Reply::Status::proceed) return SMFIS_CONTINUE;
  std::string code = r.code, xcode = r.xcode, text = reply_text(r.text);
  smfi_setreply(ctx, code.data(), xcode.data(), text.data());
  return r.status == Reply::Status::reject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

template <typename F>
sfsistat guard(SMFICTX* ctx, const char* step, F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    try {
      g_daemon->log->error(std::string(step) + ": " + e.what() + ": message tempfailed");
      std::string code = "451", xcode = "4.3.0", text = "Internal error, try again later";
      smfi_setreply(ctx, code.data(), xcode.data(), text.data());
    } catch (...) {  // logging failed too (out of memory): the tempfail below still holds
    }
  } catch (...) {
    g_daemon->log->error(std::string(step) + ": unknown exception: message tempfailed");
  }
  if (Session* s = session_of(ctx)) {
    try {
      s->abort();
    } catch (...) {  // nothing more can be done; the MTA gets the tempfail
    }
  }
  return SMFIS_TEMPFAIL;
}

std::string address_text(const sockaddr* sa) {
  if (sa == nullptr) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

std::vector<std::string> esmtp_args(char** argv) {
  std::vector<std::string> out;
  for (int i = 1; argv != nullptr && argv[0] != nullptr && argv[i] != nullptr; ++i) out.emplace_back(argv[i]);
  return out;
}

class MilterActions final : public Actions {
 public:
  explicit MilterActions(SMFICTX* ctx) : ctx_(ctx) {}
  bool insert_header(int index, const std::string& name, const std::string& value) override {
    std::string n = name, v = value;
    return smfi_insheader(ctx_, index, n.data(), v.data()) == MI_SUCCESS;
  }
  bool delete_header(const std::string& name, int index) override {
    std::string n = name;
    return smfi_chgheader(ctx_, n.data(), index, nullptr) == MI_SUCCESS;
  }
  bool add_recipient(const std::string& address, const std::string& args) override {
    std::string a = address, p = args;
    return smfi_addrcpt_par(ctx_, a.data(), p.data()) == MI_SUCCESS;
  }
  bool delete_recipient(const std::string& address) override {
    std::string a = address;
    return smfi_delrcpt(ctx_, a.data()) == MI_SUCCESS;
  }
  bool quarantine(const std::string& reason) override {
    std::string r = reason;
    return smfi_quarantine(ctx_, r.data()) == MI_SUCCESS;
  }

 private:
  SMFICTX* ctx_;
};

extern "C" {

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
  return guard(ctx, "negotiate", [&] {
    *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT |
                 SMFIF_QUARANTINE);
    // Header values exactly as sent (DKIM canonicalisation needs the leading space); no replies where we
    // never refuse (saves a round trip each); no events we ignore.
    unsigned long want = SMFIP_HDR_LEADSPC | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_HDR | SMFIP_NR_BODY |
                         SMFIP_NOUNKNOWN | SMFIP_NODATA;
    *pf1 = f1 & want;
    *pf2 = 0;
    *pf3 = 0;
    open_connection(ctx)->protocol = *pf1;
    return SMFIS_CONTINUE;
  });
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
  return guard(ctx, "connect", [&] {
    open_connection(ctx)->session.connect(hostname != nullptr ? hostname : "", address_text(addr));
    return no_reply(ctx, SMFIP_NR_CONN);
  });
}

sfsistat on_helo(SMFICTX* ctx, char* name) {
  return guard(ctx, "helo", [&] {
    if (Session* s = session_of(ctx)) s->helo(name != nullptr ? name : "");
    return no_reply(ctx, SMFIP_NR_HELO);
  });
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
  return guard(ctx, "mail", [&] {
    Session* s = session_of(ctx);
    if (s == nullptr) throw std::runtime_error("no session");
    MailMacros m{macro(ctx, "i"), macro(ctx, "{auth_authen}"), macro(ctx, "{daemon_name}"),
                 macro(ctx, "{daemon_port}")};
    return to_status(ctx,
                     s->mail_from(argv != nullptr && argv[0] != nullptr ? argv[0] : "", esmtp_args(argv), m));
  });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
  return guard(ctx, "rcpt", [&] {
    Session* s = session_of(ctx);
    if (s == nullptr || argv == nullptr || argv[0] == nullptr) throw std::runtime_error("no session");
    return to_status(ctx, s->rcpt(argv[0], esmtp_args(argv)));
  });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
  return guard(ctx, "header", [&] {
    Session* s = session_of(ctx);
    if (s == nullptr) throw std::runtime_error("no session");
    s->header(name != nullptr ? name : "", value != nullptr ? value : "");  // refuses at EOH, if at all
    return no_reply(ctx, SMFIP_NR_HDR);
  });
}

sfsistat on_eoh(SMFICTX* ctx) {
  return guard(ctx, "eoh", [&] {
    Session* s = session_of(ctx);
    if (s == nullptr) throw std::runtime_error("no session");
    return to_status(ctx, s->end_of_headers());
  });
}

sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, size_t len) {
  return guard(ctx, "body", [&] {
    Session* s = session_of(ctx);
    if (s == nullptr) throw std::runtime_error("no session");
    s->body(std::string_view(reinterpret_cast<const char*>(chunk), len));
    return no_reply(ctx, SMFIP_NR_BODY);
  });
}

sfsistat on_eom(SMFICTX* ctx) {
  return guard(ctx, "eom", [&] {
    Session* s = session_of(ctx);
    if (s == nullptr) throw std::runtime_error("no session");
    MilterActions actions(ctx);
    return to_status(ctx, s->end_of_message(actions, macro(ctx, "i")));
  });
}

sfsistat on_abort(SMFICTX* ctx) {
  return guard(ctx, "abort", [&] {
    if (Session* s = session_of(ctx)) s->abort();
    return SMFIS_CONTINUE;
  });
}

sfsistat on_close(SMFICTX* ctx) {
  return guard(ctx, "close", [&] {
    std::unique_ptr<Connection> c(connection_of(ctx));
    smfi_setpriv(ctx, nullptr);
    if (c) c->session.abort();
    return SMFIS_CONTINUE;
  });
}

}  // extern "C"

// libmilter keeps its listening socket to itself; this finds it (the one listening socket open at this
// point: the socketmap server starts later) and returns its address.
std::optional<std::pair<sockaddr_storage, socklen_t>> milter_listener_address(bool set_nodelay) {
  for (int fd = 0; fd < 1024; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0) continue;
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) continue;
    // TCP_NODELAY on the listener: the sockets it accepts inherit it.
    if (set_nodelay && (addr.ss_family == AF_INET || addr.ss_family == AF_INET6)) {
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return std::pair{addr, addr_len};
  }
  return std::nullopt;
}

// smfi_stop() waits for a mutex that libmilter's listener holds across its poll() of the listening socket,
// which times out only every MI_CHK_TIME (5 s): stopping took 3 s on average. While smfi_stop() waits, this
// connects to the listener every 20 ms so that its poll() returns and the mutex is let go; each such
// connection closes at once (its session reads EOF), and once the socket is closed they are refused.
void stop_libmilter(const std::optional<std::pair<sockaddr_storage, socklen_t>>& listener) {
  std::atomic<bool> stopped{false};
  std::thread waker([&listener, &stopped] {
    while (listener && !stopped.load()) {
      const int fd = socket(listener->first.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) {
        (void)connect(fd, reinterpret_cast<const sockaddr*>(&listener->first), listener->second);
        close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  smfi_stop();
  stopped.store(true);
  waker.join();
}

bool drop_privileges(const std::string& user, const Log& log) {
  if (user.empty()) return true;
  errno = 0;
  const passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) {
    log.error("milter.user \"" + user + "\": no such user");
    return false;
  }
  if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
    log.error("cannot run as \"" + user + "\": " + std::strerror(errno));
    return false;
  }
  return true;
}

std::shared_ptr<const Runtime> build_runtime(const std::string& path, const std::string& listen,
                                             Engines& engines, const Log& log) {
  auto loaded = load_config_file(path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) log.error(e);
    return nullptr;
  }
  if (!listen.empty()) loaded.config.milter.listen = listen;
  try {
    return std::make_shared<const Runtime>(std::move(loaded.config), engines);
  } catch (const std::exception& e) {
    log.error(path + ": " + e.what());
    return nullptr;
  }
}

int run(const std::string& config_path, const std::string& listen_override) {
  auto loaded = load_config_file(config_path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::cerr << "chainmail-milter: " << e << "\n";
    return EX_CONFIG;
  }
  if (!install_signal_handlers()) {
    std::cerr << "chainmail-milter: cannot install signal handlers: " << std::strerror(errno) << "\n";
    return EX_OSERR;
  }
  Daemon daemon;
  daemon.log =
      std::make_unique<Log>(loaded.config.milter.log == "stderr" ? Log::Sink::stderr_ : Log::Sink::syslog);
  const Log& log = *daemon.log;
  init_mime();
  try {
    daemon.engines = std::make_unique<Engines>(loaded.config);
  } catch (const std::exception& e) {
    log.error(config_path + ": " + e.what());
    return EX_CONFIG;
  }
  daemon.runtime = build_runtime(config_path, listen_override, *daemon.engines, log);
  if (!daemon.runtime) return EX_CONFIG;
  g_daemon = &daemon;
  // A copy: the sockets are opened with it and a reload compares against it, while the runtime it came from
  // is freed once a reload has replaced it and its last message has finished.
  const Config config = daemon.runtime->config;

  smfiDesc desc{};
  desc.xxfi_name = const_cast<char*>("chainmail-milter");
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags =
      SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT | SMFIF_QUARANTINE;
  desc.xxfi_connect = on_connect;
  desc.xxfi_helo = on_helo;
  desc.xxfi_envfrom = on_envfrom;
  desc.xxfi_envrcpt = on_envrcpt;
  desc.xxfi_header = on_header;
  desc.xxfi_eoh = on_eoh;
  desc.xxfi_body = on_body;
  desc.xxfi_eom = on_eom;
  desc.xxfi_abort = on_abort;
  desc.xxfi_close = on_close;
  desc.xxfi_negotiate = on_negotiate;

  std::string spec = config.milter.listen;
  if (smfi_setconn(spec.data()) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) {
    log.error("cannot set up libmilter for " + spec);
    return EX_UNAVAILABLE;
  }
  smfi_settimeout(static_cast<int>(config.milter.timeout_s));
  if (smfi_opensocket(true) != MI_SUCCESS) {
    log.error("cannot listen on " + spec);
    return EX_UNAVAILABLE;
  }
  const auto listener = milter_listener_address(true);
  if (spec.rfind("unix:", 0) == 0 || spec.rfind("local:", 0) == 0) {
    // The MTA runs as another user; access is controlled by the permissions of the socket's directory.
    chmod(spec.substr(spec.find(':') + 1).c_str(), 0666);
  }

  std::unique_ptr<SocketmapServer> socketmap;
  if (!config.socketmap.listen.empty()) {
    const auto& sm = config.socketmap;
    socketmap = std::make_unique<SocketmapServer>(
        SocketmapOptions{
            sm.listen, static_cast<std::size_t>(sm.max_request), static_cast<std::size_t>(sm.max_reply),
            std::chrono::milliseconds(sm.idle_timeout_ms), static_cast<std::size_t>(sm.max_clients)},
        [&daemon](std::string_view name, std::string_view key) -> std::string {
          const auto rt = daemon.current();
          std::string reply;
          if (name == "route") {
            reply = socketmap_reply(rt->router.route(key, Router::Explain::no));
          } else if (name == "senders") {
            // The stack is const only because the runtime is shared between threads; the router already
            // holds a non-const reference to the same directory, whose implementations are thread-safe.
            Directory& directory = const_cast<DirectoryStack&>(rt->directory).directory();
            reply = senders_socketmap_reply(sender_logins(rt->config, directory, key));
          } else {
            return "PERM unknown map (this server answers maps \"route\" and \"senders\")";
          }
          if (reply.rfind("TEMP", 0) == 0)
            daemon.log->warning("socketmap: " + std::string(name) + " " + untrusted(key, 320) + ": " + reply);
          return reply;
        });
    try {
      socketmap->start();
    } catch (const std::exception& e) {
      log.error(std::string("socketmap: ") + e.what());
      return EX_UNAVAILABLE;
    }
  }
  if (!drop_privileges(config.milter.user, log)) return EX_UNAVAILABLE;

  int milter_status = MI_SUCCESS;
  std::thread milter([&milter_status] {
    block_signals();
    milter_status = smfi_main();
    notify_milter_stopped();
  });
  log.info("listening on " + spec +
           (socketmap ? ", socketmap on " + config.socketmap.listen : std::string()) + ", authserv-id " +
           daemon.runtime->authserv_id);
  while (true) {
    const int sig = next_signal();
    if (sig == kMilterStopped) {
      log.error("libmilter stopped unasked (see its messages above); exiting");
      milter.join();
      if (socketmap) socketmap->stop();
      return EX_SOFTWARE;
    }
    if (sig != SIGHUP) {
      log.info("stopping on signal " + std::to_string(sig));
      break;
    }
    auto next = build_runtime(config_path, listen_override, *daemon.engines, log);
    if (!next) {
      log.error("reload failed, keeping the running configuration");
      continue;
    }
    if (next->config.milter.listen != spec || next->config.socketmap.listen != config.socketmap.listen ||
        next->config.dns.resolvers != config.dns.resolvers)
      log.warning("milter.listen, socketmap.listen and [dns] changes take effect on restart");
    {
      const std::lock_guard lock(daemon.mu);
      daemon.runtime.swap(next);
    }
    log.info("configuration reloaded");
  }
  stop_libmilter(listener);
  milter.join();
  if (socketmap) socketmap->stop();
  return milter_status == MI_SUCCESS ? 0 : EX_SOFTWARE;
}

}  // namespace
}  // namespace chainmail::milter

int main(int argc, char** argv) {
  CLI::App app{
      "chainmail-milter: validates inbound mail (SPF, DKIM, DMARC), signs outbound mail and routes "
      "every recipient through the chain"};
  std::string config_path = "/etc/chainmail/chainmail.conf";
  if (const char* env = std::getenv("CHAINMAIL_CONFIG")) config_path = env;
  std::string listen;
  app.add_option("--config", config_path,
                 "Configuration file (default $CHAINMAIL_CONFIG or "
                 "/etc/chainmail/chainmail.conf)");
  app.add_option("--listen", listen, "Override milter.listen (unix:PATH or inet:PORT@HOST)");
  CLI11_PARSE(app, argc, argv);
  return chainmail::milter::run(config_path, listen);
}
