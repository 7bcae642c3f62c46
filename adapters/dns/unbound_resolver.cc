// unbound_resolver.cc - see unbound_resolver.h.
#include "adapters/dns/unbound_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unbound.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace chainmail::dns {
namespace {

constexpr int kClassIn = 1;
constexpr int kRcodeNoError = 0;
constexpr int kRcodeNxDomain = 3;
// A negative answer's ttl comes from its SOA, and libunbound caps it at its cache-max-negative-ttl (3600 by
// default). A reply without a SOA reports ttl 0, or 32768 (unbound 1.17, never counted down): no TTL at all.
// Such answers may be reused for kNegativeTtlWithoutSoa.
constexpr std::uint32_t kMaxNegativeTtl = 3600;
constexpr std::uint32_t kNegativeTtlWithoutSoa = 60;

std::uint32_t negative_ttl(std::uint32_t reported) {
  return reported > 0 && reported <= kMaxNegativeTtl ? reported : kNegativeTtlWithoutSoa;
}

// One query's meeting point between the caller waiting in resolve() and libunbound's callback, which runs on
// the dispatcher thread. Each query has its own, so no caller can pick up another one's answer.
struct Pending {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Answer answer;
};

// What libunbound carries as the callback argument: a heap-allocated owner of the Pending. Exactly one side
// deletes it: the callback, or resolve() after a successful ub_cancel() (libunbound then never calls back).
using PendingHandle = std::shared_ptr<Pending>;

struct ResultDeleter {
  void operator()(ub_result* r) const { ub_resolve_free(r); }
};

std::string rcode_name(int rcode) {
  switch (rcode) {
    case 1:
      return "FORMERR";
    case 2:
      return "SERVFAIL";
    case 4:
      return "NOTIMP";
    case 5:
      return "REFUSED";
    default: {
      std::string s = "rcode ";
      s += std::to_string(rcode);
      return s;
    }
  }
}

Answer trouble(std::string why) {
  Answer a;
  a.status = Answer::Status::trouble;
  a.why = std::move(why);
  return a;
}

Answer to_answer(int err, const ub_result* result) {
  if (err != 0) {
    // A name that cannot be encoded (empty or over-long label) cannot exist; everything else is our trouble.
    if (err == UB_SYNTAX) {
      Answer a;
      a.status = Answer::Status::nxdomain;
      a.why = "name cannot be queried";
      return a;
    }
    std::string why = "libunbound: ";
    why += ub_strerror(err);
    return trouble(std::move(why));
  }
  if (result == nullptr) return trouble("libunbound: no result");
  if (result->bogus) {
    std::string why = "DNSSEC bogus";
    if (result->why_bogus != nullptr) {
      why += ": ";
      why += result->why_bogus;
    }
    return trouble(std::move(why));
  }
  Answer a;
  a.secure = result->secure != 0;
  // The answer RRset's TTL as libunbound holds it (already counted down if it came from its cache).
  a.ttl = result->ttl > 0 ? static_cast<std::uint32_t>(result->ttl) : 0;
  if (result->rcode == kRcodeNxDomain) {
    a.status = Answer::Status::nxdomain;
    a.ttl = negative_ttl(a.ttl);
    return a;
  }
  if (result->rcode != kRcodeNoError) return trouble(rcode_name(result->rcode));
  if (!result->havedata || result->data == nullptr || result->data[0] == nullptr) {
    a.status = Answer::Status::nodata;
    a.ttl = negative_ttl(a.ttl);
    return a;
  }
  a.status = Answer::Status::found;
  for (int i = 0; result->data[i] != nullptr; ++i) {
    a.records.emplace_back(result->data[i], static_cast<std::size_t>(result->len[i]));
  }
  return a;
}

// libunbound's callback. No exception may leave it: everything that can throw is inside the try.
void on_result(void* arg, int err, ub_result* result) noexcept {
  std::unique_ptr<PendingHandle> handle(static_cast<PendingHandle*>(arg));
  std::unique_ptr<ub_result, ResultDeleter> owned(result);
  const PendingHandle& pending = *handle;
  Answer answer;
  try {
    answer = to_answer(err, result);
  } catch (...) {
    answer.status = Answer::Status::trouble;  // Only bad_alloc can get here; `why` may be unset then.
  }
  {
    const std::lock_guard lock(pending->mu);
    pending->answer = std::move(answer);
    pending->done = true;
  }
  pending->cv.notify_one();
}

// "addr" or "addr@port" with a numeric IPv4 or IPv6 address. Returns whether it is IPv6.
bool check_forwarder(const std::string& fwd) {
  std::string addr = fwd;
  const auto at = fwd.rfind('@');
  if (at != std::string::npos) {
    addr = fwd.substr(0, at);
    const std::string port = fwd.substr(at + 1);
    bool ok = !port.empty() && port.size() <= 5;
    unsigned long value = 0;
    for (const char c : port) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      value = value * 10 + static_cast<unsigned long>(c - '0');
    }
    if (!ok || value == 0 || value > 65535) {
      throw std::runtime_error("dns: forwarder '" + fwd + "': port must be 1-65535");
    }
  }
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, addr.c_str(), &a4) == 1) return false;
  if (inet_pton(AF_INET6, addr.c_str(), &a6) == 1) return true;
  throw std::runtime_error("dns: forwarder '" + fwd + "' is not a numeric IPv4 or IPv6 address[@port]");
}

void set_option(ub_ctx* ctx, const char* opt, const char* value) {
  const int rc = ub_ctx_set_option(ctx, opt, value);
  if (rc != 0) {
    throw std::runtime_error(std::string("dns: libunbound option ") + opt + " " + value + ": " +
                             ub_strerror(rc));
  }
}

}  // namespace

void UnboundResolver::CtxDeleter::operator()(ub_ctx* ctx) const {
  ub_ctx_delete(ctx);
}

UnboundResolver::UnboundResolver(const UnboundOptions& options) : timeout_ms_(options.timeout_ms) {
  if (timeout_ms_ <= 0) throw std::runtime_error("dns: timeout_ms must be positive");
  bool any_ip6 = false;
  for (const auto& fwd : options.forwarders) any_ip6 = check_forwarder(fwd) || any_ip6;
  if (!options.trust_anchor_file.empty()) {
    const std::ifstream probe(options.trust_anchor_file);
    if (!probe) {
      throw std::runtime_error("dns: cannot read trust anchor file '" + options.trust_anchor_file +
                               "': " + std::strerror(errno));
    }
  }

  ctx_.reset(ub_ctx_create());
  if (!ctx_) throw std::runtime_error("dns: ub_ctx_create failed");
  ub_ctx* ctx = ctx_.get();
  // Threads, not a forked process: the cache lives in this process and is shared by every caller.
  if (const int rc = ub_ctx_async(ctx, 1); rc != 0) {
    throw std::runtime_error(std::string("dns: ub_ctx_async: ") + ub_strerror(rc));
  }
  // We only ever forward, and the forwarder is often a local validating resolver on 127.0.0.1.
  set_option(ctx, "do-not-query-localhost:", "no");
  if (!options.forwarders.empty() && !any_ip6) set_option(ctx, "do-ip6:", "no");
  if (options.trust_anchor_file.empty()) {
    set_option(ctx, "module-config:", "iterator");  // No anchor: the validator would only add work.
  } else if (const int rc = ub_ctx_add_ta_file(ctx, options.trust_anchor_file.c_str()); rc != 0) {
    throw std::runtime_error("dns: trust anchor file '" + options.trust_anchor_file +
                             "': " + ub_strerror(rc));
  }
  if (options.forwarders.empty()) {
    if (const int rc = ub_ctx_resolvconf(ctx, nullptr); rc != 0) {
      throw std::runtime_error(std::string("dns: reading /etc/resolv.conf: ") + ub_strerror(rc));
    }
  }
  for (const auto& fwd : options.forwarders) {
    if (const int rc = ub_ctx_set_fwd(ctx, fwd.c_str()); rc != 0) {
      throw std::runtime_error("dns: forwarder '" + fwd + "': " + ub_strerror(rc));
    }
  }

  stop_fd_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_.valid()) throw std::system_error(errno, std::generic_category(), "dns: eventfd");
  dispatcher_ = std::thread([this] { dispatch_loop(); });
}

UnboundResolver::~UnboundResolver() {
  const std::uint64_t one = 1;
  if (::write(stop_fd_.get(), &one, sizeof one) < 0) {
    // An eventfd write fails only when the counter would overflow; the loop is being stopped either way.
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  // ctx_ goes last (declared first): ub_ctx_delete stops libunbound's own worker thread.
}

void UnboundResolver::dispatch_loop() noexcept {
  pollfd fds[2] = {{ub_fd(ctx_.get()), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
  while (true) {
    const int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents != 0 && ub_process(ctx_.get()) != 0) {
      // The pipe to libunbound's worker broke; nothing more will arrive. Callers time out into trouble.
      return;
    }
  }
}

Answer UnboundResolver::resolve(std::string_view name, RrType type) {
  const std::string qname(name);
  auto pending = std::make_shared<Pending>();
  auto* handle = new PendingHandle(pending);  // Owned by libunbound's callback from here on (see Pending).
  int id = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
  const int rc =
      ub_resolve_async(ctx_.get(), qname.c_str(), static_cast<int>(type), kClassIn, handle, on_result, &id);
  if (rc != 0) {
    delete handle;  // Not queued: libunbound will never call back.
    return to_answer(rc, nullptr);
  }
  std::unique_lock lock(pending->mu);
  if (pending->cv.wait_until(lock, deadline, [&] { return pending->done; }))
    return std::move(pending->answer);
  lock.unlock();
  // Cancel succeeds only while the answer has not been taken for delivery; then the callback never runs and
  // the handle is ours to free. Otherwise the callback runs (or ran) and frees it.
  if (ub_cancel(ctx_.get(), id) == UB_NOERROR) delete handle;
  lock.lock();
  if (pending->done) return std::move(pending->answer);  // It arrived just in time.
  std::string why = "timeout after ";
  why += std::to_string(timeout_ms_);
  why += " ms";
  return trouble(std::move(why));
}

}  // namespace chainmail::dns
