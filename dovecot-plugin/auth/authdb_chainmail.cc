// authdb_chainmail.cc - libauthdb_chainmail.so: Dovecot passdb and userdb driver `chainmail`.
//
//   passdb { driver = chainmail  args = /etc/chainmail/chainmail.conf }
//   userdb { driver = chainmail  args = /etc/chainmail/chainmail.conf }
//
// Dovecot's auth process loads this file from its auth module folder and calls authdb_chainmail_init(),
// which registers both drivers. The C glue here is thin: every callback is noexcept, catches everything,
// and maps adapters/ldap_auth.h answers to Dovecot's results:
//   Verdict::ok        -> PASSDB_RESULT_OK, and the user name becomes the uid (user=<uid>)
//   mismatch           -> PASSWORD_MISMATCH        unknown -> USER_UNKNOWN
//   disabled (locked, outside the gate) -> USER_DISABLED, logged with the reason
//   refused (empty / over-long password) -> PASSWORD_MISMATCH, no directory access
//   trouble (directory down, slow, several entries) -> INTERNAL_FAILURE (temporary), never a mismatch
// Credential lookups (CRAM-MD5 and the like, `doveadm auth lookup`) are not possible with bind
// authentication: they fail with SCHEME_NOT_AVAILABLE and a log line saying so.
//
// BLOCKING: module->blocking = TRUE for both drivers, so Dovecot runs them in auth-worker processes
// (auth_worker_max_count of them, each one request at a time) and the auth process's ioloop never waits.
// libldap's synchronous calls are the simple, bounded path (search_timeout_ms per operation); the ioloop
// variant (LDAP fd on Dovecot's ioloop, as db-ldap.c does) would save the worker round trip but not the
// LDAP ones, and would serialise every login on one connection as Dovecot's own LDAP passdb does. Measured
// (bench/auth/run, 10,000 users, 16 clients, docs/benchmarks.md): workers give 2.4x the logins/s of
// Dovecot's asynchronous LDAP passdb with a lower p99, because several workers keep slapd busy in parallel
// and no service-DN rebind follows each user bind.
//
// SECURITY: the configuration (with the service bind password from its file) is read in preinit, while
// the auth process still runs as root; passwords are never logged.
// DIAGNOSTICS: an unreadable or invalid chainmail.conf stops Dovecot at startup (i_fatal, every error
// listed); per-request reasons go to the auth log through auth_request_log_*.

// Dovecot's headers in their required order (config.h first), so clang-format must not sort them.
// clang-format off
extern "C" {
#include "config.h"
#include "lib.h"
// config.h declares C99 `static` array sizes, which C++ lacks; macros.h undoes that for g++ only.
#undef STATIC_ARRAY
#define STATIC_ARRAY
#include "auth-common.h"
#include "passdb.h"
#include "userdb.h"
}
// clang-format on

#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "adapters/config_loader.h"
#include "adapters/ldap_auth.h"
#include "core/login.h"

namespace {

// The state behind one passdb or userdb module (Dovecot allocates the C structs from its pools; the C++
// object lives on the heap and dies in deinit).
struct Driver {
  chainmail::LdapAuth auth;
  chainmail::Config config;
};

struct chainmail_passdb_module {
  struct passdb_module module;
  Driver* driver;
};

struct chainmail_userdb_module {
  struct userdb_module module;
  Driver* driver;
};

struct chainmail_userdb_iterate_context {
  struct userdb_iterate_context ctx;
  std::vector<std::string>* users;
  std::size_t next;
};

const char* const kSubsys = AUTH_SUBSYS_DB;

// Reads chainmail.conf; stops Dovecot with every error when it is not usable.
Driver* load_driver(const char* what, const char* args) noexcept {
  try {
    if (args == nullptr || *args == '\0') {
      i_fatal("%s chainmail: args must name chainmail.conf", what);
    }
    auto loaded = chainmail::load_config_file(args);
    if (!loaded.ok()) {
      std::string all;
      for (const auto& e : loaded.errors) all += "\n  " + e;
      i_fatal("%s chainmail: %s is not usable:%s", what, args, all.c_str());
    }
    if (loaded.config.directory.uris.empty()) {
      i_fatal("%s chainmail: %s names no LDAP server (directory.uris)", what, args);
    }
    auto options = chainmail::LdapAuthOptions::from(loaded.config);
    return new Driver{chainmail::LdapAuth(std::move(options)), std::move(loaded.config)};
  } catch (const std::exception& e) {
    i_fatal("%s chainmail: %s: %s", what, args, e.what());
  } catch (...) {
    i_fatal("%s chainmail: %s: unknown error", what, args);
  }
}

Driver* passdb_driver(struct auth_request* request) {
  return reinterpret_cast<chainmail_passdb_module*>(request->passdb->passdb)->driver;
}

Driver* userdb_driver(struct auth_request* request) {
  return reinterpret_cast<chainmail_userdb_module*>(request->userdb->userdb)->driver;
}

struct passdb_module* chainmail_passdb_preinit(pool_t pool, const char* args) noexcept {
  auto* module = p_new(pool, struct chainmail_passdb_module, 1);
  module->driver = load_driver("passdb", args);
  // See BLOCKING in the header comment.
  module->module.blocking = TRUE;
  module->module.default_pass_scheme = "PLAIN";
  return &module->module;
}

void chainmail_passdb_deinit(struct passdb_module* module) noexcept {
  auto* m = reinterpret_cast<chainmail_passdb_module*>(module);
  delete m->driver;
  m->driver = nullptr;
}

enum passdb_result passdb_result_of(struct auth_request* request, const chainmail::AuthResult& r) {
  using chainmail::Verdict;
  switch (r.verdict) {
    case Verdict::ok:
      auth_request_set_field(request, "user", r.uid.c_str(), nullptr);
      return PASSDB_RESULT_OK;
    case Verdict::mismatch:
      auth_request_log_password_mismatch(request, kSubsys);
      return PASSDB_RESULT_PASSWORD_MISMATCH;
    case Verdict::unknown:
      auth_request_log_info(request, kSubsys, "unknown user: %s", r.reason.c_str());
      return PASSDB_RESULT_USER_UNKNOWN;
    case Verdict::disabled:
      auth_request_log_info(request, kSubsys, "login refused for %s: %s", r.uid.c_str(), r.reason.c_str());
      return PASSDB_RESULT_USER_DISABLED;
    case Verdict::refused:
      auth_request_log_info(request, kSubsys, "login refused: %s", r.reason.c_str());
      return PASSDB_RESULT_PASSWORD_MISMATCH;
    case Verdict::trouble:
      break;
  }
  auth_request_log_error(request, kSubsys, "directory trouble (temporary failure): %s", r.reason.c_str());
  return PASSDB_RESULT_INTERNAL_FAILURE;
}

void chainmail_verify_plain(struct auth_request* request, const char* password,
                            verify_plain_callback_t* callback) noexcept {
  enum passdb_result result = PASSDB_RESULT_INTERNAL_FAILURE;
  try {
    const auto r = passdb_driver(request)->auth.verify(request->fields.user, password);
    result = passdb_result_of(request, r);
  } catch (const std::exception& e) {
    auth_request_log_error(request, kSubsys, "internal error: %s", e.what());
  } catch (...) {
    auth_request_log_error(request, kSubsys, "internal error");
  }
  callback(result, request);
}

void chainmail_lookup_credentials(struct auth_request* request,
                                  lookup_credentials_callback_t* callback) noexcept {
  auth_request_log_error(request, kSubsys,
                         "credential lookups are not supported: the chainmail passdb checks passwords by "
                         "binding to LDAP, so only plaintext mechanisms (PLAIN, LOGIN) work");
  callback(PASSDB_RESULT_SCHEME_NOT_AVAILABLE, nullptr, 0, request);
}

struct passdb_module_interface passdb_chainmail = {
    "chainmail",
    chainmail_passdb_preinit,
    nullptr,
    chainmail_passdb_deinit,
    chainmail_verify_plain,
    chainmail_lookup_credentials,
    nullptr,
};

struct userdb_module* chainmail_userdb_preinit(pool_t pool, const char* args) noexcept {
  auto* module = p_new(pool, struct chainmail_userdb_module, 1);
  module->driver = load_driver("userdb", args);
  module->module.blocking = TRUE;  // See BLOCKING in the header comment.
  return &module->module;
}

void chainmail_userdb_deinit(struct userdb_module* module) noexcept {
  auto* m = reinterpret_cast<chainmail_userdb_module*>(module);
  delete m->driver;
  m->driver = nullptr;
}

enum userdb_result userdb_answer(struct auth_request* request) {
  Driver* d = userdb_driver(request);
  const auto found = d->auth.find(request->fields.user);
  if (found.is_trouble()) {
    auth_request_log_error(request, kSubsys, "directory trouble (temporary failure): %s",
                           found.trouble_info().reason.c_str());
    return USERDB_RESULT_INTERNAL_FAILURE;
  }
  if (found.is_not_found()) {
    auth_request_log_unknown_user(request, kSubsys);
    return USERDB_RESULT_USER_UNKNOWN;
  }
  const chainmail::AuthUser& user = found.value();
  if (!user.in_gate) {
    auth_request_log_info(request, kSubsys, "%s is not a mail user (outside %s)", user.uid.c_str(),
                          d->auth.options().gate_dn.c_str());
    return USERDB_RESULT_USER_UNKNOWN;
  }
  const auto& a = d->config.auth;
  const std::string& domain = d->config.domains.main;
  auto set = [&](const char* name, const std::string& tmpl) {
    if (tmpl.empty()) return;
    const std::string value = chainmail::expand_user_template(tmpl, user.uid, domain);
    auth_request_set_userdb_field(request, name, value.c_str());
  };
  auth_request_set_userdb_field(request, "user", user.uid.c_str());
  auth_request_set_userdb_field(request, "uid", a.uid.c_str());
  auth_request_set_userdb_field(request, "gid", a.gid.c_str());
  set("home", a.home);
  set("mail", a.mail_location);
  set("sieve", a.sieve);
  set("sieve_dir", a.sieve_dir);
  if (user.opt_out) auth_request_set_userdb_field(request, "chainmail_no_folders", "yes");
  return USERDB_RESULT_OK;
}

void chainmail_userdb_lookup(struct auth_request* request, userdb_callback_t* callback) noexcept {
  enum userdb_result result = USERDB_RESULT_INTERNAL_FAILURE;
  try {
    result = userdb_answer(request);
  } catch (const std::exception& e) {
    auth_request_log_error(request, kSubsys, "internal error: %s", e.what());
  } catch (...) {
    auth_request_log_error(request, kSubsys, "internal error");
  }
  callback(result, request);
}

struct userdb_iterate_context* chainmail_iterate_init(struct auth_request* request,
                                                      userdb_iter_callback_t* callback,
                                                      void* context) noexcept {
  auto* ctx = i_new(struct chainmail_userdb_iterate_context, 1);
  ctx->ctx.auth_request = request;
  ctx->ctx.callback = callback;
  ctx->ctx.context = context;
  try {
    auto listed = userdb_driver(request)->auth.list_users();
    if (listed.is_found()) {
      ctx->users = new std::vector<std::string>(listed.take());
    } else {
      auth_request_log_error(request, kSubsys, "listing users failed: %s",
                             listed.trouble_info().reason.c_str());
      ctx->ctx.failed = TRUE;
    }
  } catch (const std::exception& e) {
    auth_request_log_error(request, kSubsys, "listing users failed: %s", e.what());
    ctx->ctx.failed = TRUE;
  } catch (...) {
    ctx->ctx.failed = TRUE;
  }
  return &ctx->ctx;
}

// The callback may free the context (the worker ends the iteration from inside it), so nothing touches
// ctx after calling it.
void chainmail_iterate_next(struct userdb_iterate_context* _ctx) noexcept {
  auto* ctx = reinterpret_cast<chainmail_userdb_iterate_context*>(_ctx);
  if (ctx->users == nullptr || ctx->next >= ctx->users->size()) {
    _ctx->callback(nullptr, _ctx->context);
    return;
  }
  const char* user = (*ctx->users)[ctx->next++].c_str();
  _ctx->callback(user, _ctx->context);
}

int chainmail_iterate_deinit(struct userdb_iterate_context* _ctx) noexcept {
  auto* ctx = reinterpret_cast<chainmail_userdb_iterate_context*>(_ctx);
  const int ret = _ctx->failed ? -1 : 0;
  delete ctx->users;
  i_free(ctx);
  return ret;
}

struct userdb_module_interface userdb_chainmail = {
    "chainmail",
    chainmail_userdb_preinit,
    nullptr,
    chainmail_userdb_deinit,
    chainmail_userdb_lookup,
    chainmail_iterate_init,
    chainmail_iterate_next,
    chainmail_iterate_deinit,
};

}  // namespace

extern "C" {

__attribute__((visibility("default"))) extern const char* const authdb_chainmail_version;
__attribute__((visibility("default"))) void authdb_chainmail_init(void);
__attribute__((visibility("default"))) void authdb_chainmail_deinit(void);

const char* const authdb_chainmail_version = DOVECOT_ABI_VERSION;

void authdb_chainmail_init(void) {
  passdb_register_module(&passdb_chainmail);
  userdb_register_module(&userdb_chainmail);
}

void authdb_chainmail_deinit(void) {
  passdb_unregister_module(&passdb_chainmail);
  userdb_unregister_module(&userdb_chainmail);
}

}  // extern "C"
