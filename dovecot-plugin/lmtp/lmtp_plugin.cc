// lmtp_plugin.cc - chainmail's Dovecot LMTP hook, lib20_chainmail_lmtp_plugin.so (Dovecot 2.3).
//
//   protocol lmtp { mail_plugins = $mail_plugins chainmail_lmtp }
//   plugin { chainmail_config = /etc/chainmail/chainmail.conf }
//
// The plugin chains lmtp_client_created_hook_set() and overrides two of each LMTP client's vfuncs:
//
// cmd_rcpt: when the recipient carries ORCPT=rfc822;<original> (the milter sets it on every recipient it
//   expands), the original address is routed again with the core router (Explain::yes) against the directory
//   in chainmail.conf, and core/delivery's find_via() picks the group or alias on the path that reaches this
//   mailbox (the LMTP recipient is <uid>@<routing.mailbox_domain>). An ORCPT whose routing does not reach
//   this mailbox decides nothing (INBOX, and the trace names the LMTP recipient). Directory trouble, or a
//   configuration that cannot be loaded, answers 451 4.3.0 at RCPT: Postfix retries, nothing bounces.
//
// local_deliver: the folder is lmtp.folder_template for the group or alias (core/delivery folder_for(),
//   sanitised; INBOX otherwise, or when the userdb field chainmail_no_folders=yes opts the user out). It is
//   created and subscribed here on first use, rather than relying on lda_mailbox_autocreate/autosubscribe,
//   so the operator's lda settings do not change what chainmail promises; an existing folder is left as the
//   user has it (an unsubscribed one stays unsubscribed). Then lldctx->rcpt_default_mailbox names it (Sieve
//   can still file elsewhere).
//   Headers: the message is re-opened as a raw mail whose stream is our trace header followed by the source
//   stream through i_stream_create_header_filter(HEADER_FILTER_EXCLUDE, {trace header}), which drops every
//   copy of that header from outside. This is done per recipient in local_deliver because the header differs
//   per copy and lmtp-local delivers the 2nd..nth copies from the first saved mail (which then carries the
//   first recipient's trace, dropped by the same filter). cmd_data would only see one stream for all copies,
//   and mail_deliver's deliver_mail hook is where Sieve itself sits. Sieve sees the header.
//
// client created: DSN is added to the LHLO capabilities (Postfix sends ORCPT only to a server announcing it;
//   plugin setting chainmail_lmtp_dsn = no turns this off).
//
// SECURITY: ORCPT is envelope data; group names come from the directory: both only ever pick among folders
// that core/delivery's sanitiser accepts, and the trace header value is one bounded line. No C++ exception
// crosses into Dovecot: every callback is noexcept and catches everything at its edge.
// Recipients that this Dovecot proxies (lmtp_proxy) get the RCPT decision (and its 451) but no folder and no
// trace header here: local_deliver runs on the backend. chainmail.conf is read once per lmtp process: a
// change takes effect with `doveadm reload` (new processes).
//
// DIAGNOSTICS: errors and warnings go to Dovecot's log with the recipient's event ("chainmail: ..."): the
// configuration error, the directory trouble behind a 451, a folder that could not be created.
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/routing_engine.h"
#include "core/address.h"
#include "core/delivery.h"
#include "core/router.h"

// clang-format off
extern "C" {
// lib.h first: it pulls in Dovecot's config.h (its own, beside lib.h; not core/config.h) that every other
// Dovecot header needs. clang-format is off here because its include regrouping would sort lib.h away.
#include "lib.h"
#include "istream.h"
#include "istream-concat.h"
#include "istream-header-filter.h"
#include "lmtp-common.h"
#include "lmtp-recipient.h"
#include "master-service-ssl.h"
#include "mail-namespace.h"
#include "mail-storage.h"
#include "mail-user.h"
#include "module-context.h"
#include "raw-storage.h"
#include "smtp-address.h"
#include "smtp-server.h"
#include "str.h"
}
// clang-format on

#define CHAINMAIL_EXPORT __attribute__((visibility("default")))

namespace {

constexpr const char* kDefaultConfig = "/etc/chainmail/chainmail.conf";
constexpr const char* kConfigSetting = "chainmail_config";
constexpr const char* kOptOutField = "chainmail_no_folders";
constexpr const char* kDsnSetting = "chainmail_lmtp_dsn";

// chainmail.conf, the directory and the router, built on the first recipient that needs them and kept for
// the life of the lmtp process (its LDAP connections are reused across clients).
struct Engine {
  std::unique_ptr<chainmail::RoutingEngine> routing;
  const chainmail::Config& config() const { return routing->config; }
  // The last routed ORCPT in the current transaction: a group's members arrive as consecutive RCPTs with the
  // same ORCPT, and routing the group again for each of them would cost members x group lookups per
  // message. Only reused within one LMTP transaction (its id); trouble is never kept.
  std::string last_key;
  chainmail::RouteResult last_route;

  const chainmail::RouteResult& route(const std::string& transaction, const std::string& orcpt) {
    std::string key = transaction;
    key += '\n';
    key += orcpt;
    if (key != last_key) {
      last_key.clear();
      last_route = routing->router.route(orcpt, chainmail::Router::Explain::yes);
      if (last_route.outcome != chainmail::Outcome::trouble) last_key = std::move(key);
    }
    return last_route;
  }
};
std::unique_ptr<Engine> g_engine;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

// Returns the engine for `path`, or nullptr with `error` set.
Engine* engine_for(const std::string& path, std::string& error) {
  if (g_engine && g_engine->routing->path == path) return g_engine.get();
  g_engine.reset();
  auto routing = chainmail::RoutingEngine::load(path, error);
  if (!routing) return nullptr;
  g_engine = std::make_unique<Engine>();
  g_engine->routing = std::move(routing);
  return g_engine.get();
}

// What cmd_rcpt decided for one recipient, kept in the recipient's pool (module context).
struct RcptContext {
  union lmtp_recipient_module_context module_ctx;
  const char* folder;        // "INBOX" or the group/alias folder (before the opt-out)
  const char* trace_header;  // lmtp.trace_header
  const char* trace_value;
};

struct ClientContext {
  union lmtp_module_context module_ctx;  // .super: the vfuncs we override
};

// Dovecot's MODULE_CONTEXT macros do not compile as C++; these do the same with the same registers.
// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables)
module_context_id g_client_module{&lmtp_module_register.id, 0, FALSE};
module_context_id g_rcpt_module{&lmtp_recipient_module_register.id, 0, FALSE};
lmtp_client_created_func_t* g_next_hook = nullptr;
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)

void* context_get(const struct array* contexts, module_context_id& id) {
  const unsigned int idx = module_get_context_id(&id);
  if (idx >= array_count_i(contexts)) return nullptr;
  return *static_cast<void* const*>(array_idx_i(contexts, idx));
}

void context_set(struct array* contexts, module_context_id& id, void* ctx) {
  array_idx_set_i(contexts, module_get_context_id(&id), static_cast<const void*>(&ctx));
}

ClientContext* client_context(struct client* client) {
  auto* ctx = static_cast<ClientContext*>(context_get(&client->module_contexts.arr, g_client_module));
  i_assert(ctx != nullptr);
  return ctx;
}

RcptContext* rcpt_context(struct lmtp_recipient* lrcpt) {
  return static_cast<RcptContext*>(context_get(&lrcpt->module_contexts.arr, g_rcpt_module));
}

struct Decision {
  std::string folder = std::string(chainmail::kInbox);
  std::string trace_header = "X-Chainmail-Route";
  std::string trace_value;
};

// The decision for one recipient; nullopt with `error` set on trouble (directory, configuration).
std::optional<Decision> decide(struct client* client, const struct smtp_server_recipient* rcpt,
                               std::string& error) {
  const char* setting = mail_user_set_plugin_getenv(client->user_set, kConfigSetting);
  const std::string path = (setting != nullptr && *setting != '\0') ? setting : kDefaultConfig;
  Engine* engine = engine_for(path, error);
  if (engine == nullptr) return std::nullopt;
  const chainmail::Config& config = engine->config();

  const std::string rcpt_address = smtp_address_encode(rcpt->path);
  const std::string local = rcpt->path->localpart != nullptr ? rcpt->path->localpart : "";
  const std::string user =
      chainmail::ascii_lower(chainmail::split_detail(local, config.routing.recipient_delimiter).base);

  Decision d;
  d.trace_header = config.lmtp.trace_header;
  std::string original = rcpt_address;
  chainmail::Via via;
  const auto& orcpt = rcpt->params.orcpt;
  if (orcpt.addr_type != nullptr && strcasecmp(orcpt.addr_type, "rfc822") == 0 && orcpt.addr_raw != nullptr) {
    // Dovecot has already decoded the xtext.
    const char* trans_id = smtp_server_connection_get_transaction_id(rcpt->conn);
    const chainmail::RouteResult& route = engine->route(trans_id != nullptr ? trans_id : "", orcpt.addr_raw);
    if (route.outcome == chainmail::Outcome::trouble) {
      // Dovecot logs with %s: the address is only cut to a sane length here.
      error = "directory trouble routing ORCPT ";
      error += std::string_view(orcpt.addr_raw).substr(0, chainmail::kMaxTraceOriginal);
      error += ": ";
      error += route.reason;
      return std::nullopt;
    }
    if (auto found = chainmail::find_via(route, user, config.routing.mailbox_domain,
                                         config.routing.recipient_delimiter)) {
      via = std::move(*found);
      original = orcpt.addr_raw;
    }
  }
  d.folder = chainmail::folder_for(via, config.lmtp);
  d.trace_value = chainmail::trace_value(original, via, user);
  return d;
}

int chainmail_cmd_rcpt(struct client* client, struct smtp_server_cmd_ctx* cmd,
                       struct lmtp_recipient* lrcpt) noexcept {
  ClientContext* ctx = client_context(client);
  struct smtp_server_recipient* rcpt = lrcpt->rcpt;
  std::optional<Decision> decision;
  std::string error;
  try {
    decision = decide(client, rcpt, error);
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  if (!decision) {
    e_error(rcpt->event, "chainmail: %s", error.c_str());
    smtp_server_recipient_reply(rcpt, 451, "4.3.0", "Temporary directory failure, try again later");
    return -1;
  }
  auto* rctx = p_new(rcpt->pool, RcptContext, 1);
  rctx->folder = p_strdup(rcpt->pool, decision->folder.c_str());
  rctx->trace_header = p_strdup(rcpt->pool, decision->trace_header.c_str());
  rctx->trace_value = p_strdup(rcpt->pool, decision->trace_value.c_str());
  context_set(&lrcpt->module_contexts.arr, g_rcpt_module, rctx);
  return ctx->module_ctx.super.cmd_rcpt(client, cmd, lrcpt);
}

// Creates `name` and subscribes it when it does not exist yet. False: it cannot be used (logged).
bool ensure_folder(struct mail_user* user, const char* name, struct event* event) {
  struct mail_namespace* ns = mail_namespace_find(user->namespaces, name);
  struct mailbox* box = mailbox_alloc(ns->list, name, static_cast<enum mailbox_flags>(0));
  bool ok = true;
  if (mailbox_create(box, nullptr, FALSE) < 0) {
    enum mail_error err = MAIL_ERROR_NONE;
    const char* msg = mailbox_get_last_error(box, &err);
    if (err != MAIL_ERROR_EXISTS) {
      e_warning(event, "chainmail: cannot create folder %s, delivering to INBOX: %s", name, msg);
      ok = false;
    }
  } else if (mailbox_set_subscribed(box, TRUE) < 0) {
    e_warning(event, "chainmail: cannot subscribe folder %s: %s", name,
              mailbox_get_last_internal_error(box, nullptr));
  }
  mailbox_free(&box);
  return ok;
}

// The source mail re-opened as a raw mail with `name: value` on top and every `name` header of the source
// removed. Owns the raw mailbox, its transaction and the mail.
class TracedMail {
 public:
  TracedMail() = default;
  TracedMail(const TracedMail&) = delete;
  TracedMail& operator=(const TracedMail&) = delete;
  ~TracedMail() {
    if (mail_ != nullptr) mail_free(&mail_);
    if (trans_ != nullptr) mailbox_transaction_rollback(&trans_);
    if (box_ != nullptr) mailbox_free(&box_);
  }

  // False (logged) when the source cannot be read.
  bool open(struct client* client, struct smtp_server_transaction* trans, struct mail* src, const char* name,
            const char* value, struct event* event) {
    struct istream* input = nullptr;
    if (mail_get_stream(src, nullptr, nullptr, &input) < 0) {
      e_error(event, "chainmail: cannot read the message: %s",
              mailbox_get_last_internal_error(src->box, nullptr));
      return false;
    }
    const char* const drop[] = {name};
    // The function, not Dovecot's type-checking macro of the same name (typeof on a callback).
    struct istream* filtered = (i_stream_create_header_filter)(input, HEADER_FILTER_EXCLUDE, drop, 1,
                                                               null_header_filter_callback, nullptr);
    string_t* header = t_str_new(256);
    str_printfa(header, "%s: %s\r\n", name, value);
    struct istream* top = i_stream_create_copy_from_data(str_data(header), str_len(header));
    struct istream* parts[] = {top, filtered, nullptr};
    struct istream* combined = i_stream_create_concat(parts);
    // The raw mailbox takes its name from the stream: an unnamed one is refused ("Name is empty").
    i_stream_set_name(combined, "chainmail-traced-mail");
    i_stream_unref(&top);
    i_stream_unref(&filtered);

    time_t received = static_cast<time_t>(-1);
    if (mail_get_received_date(src, &received) < 0) received = static_cast<time_t>(-1);
    const int ret = raw_mailbox_alloc_stream(client->raw_mail_user, combined, received,
                                             smtp_address_encode(trans->mail_from), &box_);
    i_stream_unref(&combined);
    if (ret < 0) {
      e_error(event, "chainmail: cannot open the traced message: %s",
              mailbox_get_last_internal_error(box_, nullptr));
      return false;
    }
    trans_ =
        mailbox_transaction_begin(box_, static_cast<enum mailbox_transaction_flags>(0), "chainmail_lmtp");
    mail_ = mail_alloc(trans_, static_cast<enum mail_fetch_field>(0), nullptr);
    mail_set_seq(mail_, 1);
    return true;
  }

  struct mail* mail() const {
    return mail_;
  }

 private:
  struct mailbox* box_ = nullptr;
  struct mailbox_transaction_context* trans_ = nullptr;
  struct mail* mail_ = nullptr;
};

int chainmail_local_deliver(struct client* client, struct lmtp_recipient* lrcpt,
                            struct smtp_server_cmd_ctx* cmd, struct smtp_server_transaction* trans,
                            struct lmtp_local_deliver_context* lldctx) noexcept {
  ClientContext* ctx = client_context(client);
  const RcptContext* rctx = rcpt_context(lrcpt);
  if (rctx == nullptr) return ctx->module_ctx.super.local_deliver(client, lrcpt, cmd, trans, lldctx);
  struct smtp_server_recipient* rcpt = lrcpt->rcpt;

  if (strcmp(rctx->folder, "INBOX") != 0 && !mail_user_plugin_getenv_bool(lldctx->rcpt_user, kOptOutField)) {
    struct mail_namespace* inbox_ns = mail_namespace_find_inbox(lldctx->rcpt_user->namespaces);
    const char* folder = p_strconcat(rcpt->pool, inbox_ns->prefix, rctx->folder, nullptr);
    if (ensure_folder(lldctx->rcpt_user, folder, rcpt->event)) lldctx->rcpt_default_mailbox = folder;
  }

  struct mail* const src = lldctx->src_mail;
  int ret = -1;
  {
    TracedMail traced;
    if (!traced.open(client, trans, src, rctx->trace_header, rctx->trace_value, rcpt->event)) {
      // Delivering without the filter could pass a forged trace header on: wait instead.
      smtp_server_recipient_reply(rcpt, 451, "4.3.0", "Temporary internal error");
      return -1;
    }
    lldctx->src_mail = traced.mail();
    ret = ctx->module_ctx.super.local_deliver(client, lrcpt, cmd, trans, lldctx);
    lldctx->src_mail = src;
  }
  return ret;
}

// Postfix's LMTP client sends ORCPT (and NOTIFY) only to a server that announces DSN in its LHLO reply, and
// Dovecot 2.3's LMTP accepts ORCPT without announcing DSN: without this the hook would never see an ORCPT
// from Postfix. The capabilities are Dovecot 2.3.19's own (lmtp-client.c, client_create()), plus DSN; there
// is no getter to add one bit. Dovecot's SMTP server parses NOTIFY, ENVID and RET once DSN is set, and
// Postfix, not the LMTP server, sends the DSNs, so announcing it is truthful. `chainmail_lmtp_dsn = no` turns
// it off.
void announce_dsn(struct client* client) {
  if (!mail_user_set_plugin_getenv_bool(client->user_set, kDsnSetting)) {
    const char* value = mail_user_set_plugin_getenv(client->user_set, kDsnSetting);
    if (value != nullptr && *value != '\0') return;  // explicitly off
  }
  auto caps = static_cast<unsigned int>(
      SMTP_CAPABILITY_PIPELINING | SMTP_CAPABILITY_ENHANCEDSTATUSCODES | SMTP_CAPABILITY_8BITMIME |
      SMTP_CAPABILITY_CHUNKING | SMTP_CAPABILITY_XCLIENT | SMTP_CAPABILITY__ORCPT | SMTP_CAPABILITY_DSN);
  if (!smtp_server_connection_is_ssl_secured(client->conn) && master_service_ssl_is_enabled(master_service)) {
    caps |= SMTP_CAPABILITY_STARTTLS;
  }
  smtp_server_connection_set_capabilities(client->conn, static_cast<enum smtp_capability>(caps));
}

void chainmail_client_created(struct client** clientp) noexcept {
  struct client* client = *clientp;
  announce_dsn(client);
  auto* ctx = p_new(client->pool, ClientContext, 1);
  ctx->module_ctx.super = client->v;
  client->v.cmd_rcpt = chainmail_cmd_rcpt;
  client->v.local_deliver = chainmail_local_deliver;
  context_set(&client->module_contexts.arr, g_client_module, ctx);
  if (g_next_hook != nullptr) g_next_hook(clientp);
}

}  // namespace

extern "C" {

// Dovecot's module loader reads the dependency as the characters at the symbol (a char array) and the version
// through a `const char *const *`.
CHAINMAIL_EXPORT extern const char chainmail_lmtp_plugin_binary_dependency[];
const char chainmail_lmtp_plugin_binary_dependency[] = "lmtp";
CHAINMAIL_EXPORT extern const char* const chainmail_lmtp_plugin_version;
const char* const chainmail_lmtp_plugin_version = DOVECOT_ABI_VERSION;

CHAINMAIL_EXPORT void chainmail_lmtp_plugin_init(struct module* /*module*/) {
  g_next_hook = lmtp_client_created_hook_set(chainmail_client_created);
}

CHAINMAIL_EXPORT void chainmail_lmtp_plugin_deinit(void) {
  lmtp_client_created_hook_set(g_next_hook);
  g_engine.reset();
}

}  // extern "C"
