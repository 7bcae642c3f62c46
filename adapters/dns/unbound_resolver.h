// unbound_resolver.h - the production Resolver: libunbound, one context and one cache for every thread.
//
//   UnboundOptions options;
//   options.forwarders = {"127.0.0.1@5353"};        // empty: the name servers in /etc/resolv.conf
//   options.trust_anchor_file = "/usr/share/dns/root.key";  // empty: no DNSSEC validation
//   UnboundResolver resolver(options);
//   Answer a = resolver.resolve("example.org", RrType::mx);
//
// Every query goes through libunbound's asynchronous interface. A dispatcher thread owned by the resolver
// waits on the context's file descriptor and runs ub_process(); each answer is delivered through the callback
// to the one caller that asked it (per-query state, never a shared slot), so concurrent callers cannot see
// each other's results. A caller waits at most timeout_ms; then the query is cancelled (ub_cancel) and the
// answer is trouble. libunbound keeps resolving a cancelled query in the background, so its answer still
// warms the shared cache.
//
// Outcomes (resolver.h): NOERROR with records -> found; NOERROR without -> nodata; NXDOMAIN -> nxdomain;
// SERVFAIL, REFUSED, any other rcode, DNSSEC bogus, timeout, or a libunbound error -> trouble with `why`.
// `secure` is libunbound's DNSSEC verdict (only ever true with a trust anchor). A name libunbound cannot even
// put on the wire (an empty or over-long label) is nxdomain: it cannot exist.
//
// SECURITY: the resolver only forwards (forward-zone "." to the configured servers); it never recurses
// itself. Forwarding to a server on 127.0.0.1 is allowed (do-not-query-localhost: no), since a local
// validating resolver is the usual deployment. Without a trust anchor, answers are exactly as trustworthy as
// the path to the forwarder; with one, bogus answers become trouble, never data.
//
// DIAGNOSTICS: the constructor throws std::runtime_error naming the bad option (an unparseable forwarder, an
// unreadable trust anchor file, a libunbound setup error). resolve() never throws for DNS outcomes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "adapters/dns/resolver.h"
#include "adapters/unique_fd.h"

struct ub_ctx;

namespace chainmail::dns {

struct UnboundOptions {
  std::vector<std::string> forwarders;  // "127.0.0.1@5353" or "::1"; empty = /etc/resolv.conf
  std::string trust_anchor_file;        // empty = no DNSSEC validation
  std::int64_t timeout_ms = 5000;       // per query, > 0
};

class UnboundResolver final : public Resolver {
 public:
  // Throws std::runtime_error with a clear message on bad options (unparseable forwarder, unreadable anchor).
  explicit UnboundResolver(const UnboundOptions& options);
  // Stops the dispatcher and libunbound. No resolve() may still be running.
  ~UnboundResolver() override;

  UnboundResolver(const UnboundResolver&) = delete;
  UnboundResolver& operator=(const UnboundResolver&) = delete;

  Answer resolve(std::string_view name, RrType type) override;  // thread-safe, bounded by timeout_ms

 private:
  struct CtxDeleter {
    void operator()(ub_ctx* ctx) const;
  };

  void dispatch_loop() noexcept;

  std::unique_ptr<ub_ctx, CtxDeleter> ctx_;
  std::int64_t timeout_ms_;
  UniqueFd stop_fd_;  // eventfd: written once by the destructor to end dispatch_loop()
  std::thread dispatcher_;
};

}  // namespace chainmail::dns
