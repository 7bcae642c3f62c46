// chainmail_sieve.cc - the C++ side of vnd.chainmail (chainmail_sieve.h): loads chainmail.conf, builds the
// directory and the router once per process, and answers the authres and route tests with core/sieve_match.
//
// Everything Pigeonhole-specific is in ext_chainmail.c; this file knows nothing of Sieve. Every entry point
// is noexcept and catches everything: an exception becomes trouble reported through on_error.
//
// DIAGNOSTICS: nothing is logged here; errors go back to the glue, which reports them as Sieve runtime
// errors (Dovecot's log, the user's sieve log) and tempfails the delivery.
#include "sieve-ext/chainmail_sieve.h"

#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/routing_engine.h"
#include "core/address.h"
#include "core/router.h"
#include "core/sieve_match.h"

namespace {

// Attacker text (an ORCPT) in an error message is cut to this many bytes.
constexpr std::size_t kMaxErrorText = 320;

struct Engine {
  std::unique_ptr<chainmail::RoutingEngine> routing;
  std::string authserv_id;
};
std::unique_ptr<Engine> g_engine;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

// The engine for `path`, or nullptr with `error` set.
Engine* engine_for(const std::string& path, std::string& error) {
  if (g_engine && g_engine->routing->path == path) return g_engine.get();
  g_engine.reset();
  auto routing = chainmail::RoutingEngine::load(path, error);
  if (!routing) return nullptr;
  g_engine = std::make_unique<Engine>();
  g_engine->authserv_id = chainmail::sieve::our_authserv_id(routing->config);
  g_engine->routing = std::move(routing);
  return g_engine.get();
}

void report(chainmail_sieve_text_fn* on_error, void* ctx, const char* message) noexcept {
  if (on_error != nullptr) on_error(ctx, message);
}

chainmail::sieve::AuthMethod method_of(chainmail_sieve_method m) {
  switch (m) {
    case CHAINMAIL_SIEVE_SPF:
      return chainmail::sieve::AuthMethod::spf;
    case CHAINMAIL_SIEVE_DKIM:
      return chainmail::sieve::AuthMethod::dkim;
    case CHAINMAIL_SIEVE_DMARC:
      break;
  }
  return chainmail::sieve::AuthMethod::dmarc;
}

chainmail::sieve::RouteKind kind_of(chainmail_sieve_route_kind k) {
  switch (k) {
    case CHAINMAIL_SIEVE_ROUTE_GROUP:
      return chainmail::sieve::RouteKind::group;
    case CHAINMAIL_SIEVE_ROUTE_ALIAS:
      return chainmail::sieve::RouteKind::alias;
    case CHAINMAIL_SIEVE_ROUTE_ANY:
      break;
  }
  return chainmail::sieve::RouteKind::any;
}

int authres(const char* config_path, const char* const* fields, std::size_t n_fields,
            chainmail_sieve_method method, chainmail_sieve_text_fn* on_value,
            chainmail_sieve_text_fn* on_error, void* ctx) {
  std::string error;
  const Engine* engine = engine_for(config_path, error);
  if (engine == nullptr) {
    report(on_error, ctx, error.c_str());
    return CHAINMAIL_SIEVE_TROUBLE;
  }
  std::vector<std::string_view> values;
  values.reserve(std::min(n_fields, chainmail::sieve::kMaxAuthresFields));
  for (std::size_t i = 0; i < n_fields && i < chainmail::sieve::kMaxAuthresFields; ++i) {
    values.emplace_back(fields[i] != nullptr ? fields[i] : "");
  }
  const chainmail::sieve::AuthresResults found =
      chainmail::sieve::authres_results(values, engine->authserv_id, method_of(method));
  switch (found.field) {
    case chainmail::sieve::AuthresResults::Field::none:
      return CHAINMAIL_SIEVE_NO_FIELD;
    case chainmail::sieve::AuthresResults::Field::unparsable:
      return CHAINMAIL_SIEVE_UNPARSABLE;
    case chainmail::sieve::AuthresResults::Field::ours:
      break;
  }
  for (const std::string& r : found.results) on_value(ctx, r.c_str());
  return CHAINMAIL_SIEVE_OURS;
}

int route(const char* config_path, const char* orcpt, const char* mailbox_local,
          chainmail_sieve_route_kind kind, chainmail_sieve_text_fn* on_value,
          chainmail_sieve_text_fn* on_error, void* ctx) {
  std::string error;
  Engine* engine = engine_for(config_path, error);
  if (engine == nullptr) {
    report(on_error, ctx, error.c_str());
    return -1;
  }
  const chainmail::Config& config = engine->routing->config;
  const chainmail::RouteResult result = engine->routing->router.route(orcpt, chainmail::Router::Explain::yes);
  if (result.outcome == chainmail::Outcome::trouble) {
    error = "directory trouble routing ORCPT ";
    error += std::string_view(orcpt).substr(0, kMaxErrorText);
    error += ": ";
    error += result.reason;
    report(on_error, ctx, error.c_str());
    return -1;
  }
  const std::string user =
      chainmail::ascii_lower(chainmail::split_detail(mailbox_local, config.routing.recipient_delimiter).base);
  const std::vector<std::string> names = chainmail::sieve::route_names(
      result, user, config.routing.mailbox_domain, config.routing.recipient_delimiter, kind_of(kind));
  for (const std::string& name : names) on_value(ctx, name.c_str());
  return static_cast<int>(names.size());
}

}  // namespace

extern "C" {

int chainmail_sieve_authres(const char* config_path, const char* const* fields, size_t n_fields,
                            enum chainmail_sieve_method method, chainmail_sieve_text_fn* on_value,
                            chainmail_sieve_text_fn* on_error, void* ctx) noexcept {
  try {
    return authres(config_path, fields, n_fields, method, on_value, on_error, ctx);
  } catch (const std::exception& e) {
    report(on_error, ctx, e.what());
  } catch (...) {
    report(on_error, ctx, "unknown exception");
  }
  return CHAINMAIL_SIEVE_TROUBLE;
}

int chainmail_sieve_route(const char* config_path, const char* orcpt, const char* mailbox_local,
                          enum chainmail_sieve_route_kind kind, chainmail_sieve_text_fn* on_value,
                          chainmail_sieve_text_fn* on_error, void* ctx) noexcept {
  try {
    return route(config_path, orcpt, mailbox_local, kind, on_value, on_error, ctx);
  } catch (const std::exception& e) {
    report(on_error, ctx, e.what());
  } catch (...) {
    report(on_error, ctx, "unknown exception");
  }
  return -1;
}

void chainmail_sieve_release(void) noexcept {
  g_engine.reset();
}

}  // extern "C"
