/* ext_chainmail.c - the Sieve extension vnd.chainmail for Pigeonhole 0.5 (Dovecot 2.3):
 * lib90_sieve_chainmail_plugin.so. The Pigeonhole glue only; the decisions are chainmail's C++
 * (chainmail_sieve.h -> core/sieve_match, core/router).
 *
 *   plugin {
 *     sieve_plugins = sieve_chainmail
 *     sieve_extensions = +vnd.chainmail      (or sieve_global_extensions: global scripts only)
 *     chainmail_config = /etc/chainmail/chainmail.conf   (the default)
 *   }
 *
 *   require "vnd.chainmail";
 *   authres [":spf" / ":dkim" / ":dmarc"] [COMPARATOR] [MATCH-TYPE] <key-list: string-list>
 *   route [":group" / ":alias"] [COMPARATOR] [MATCH-TYPE] <key-list: string-list>
 *
 * authres: true when the result of the method (DMARC without a tag) in the topmost Authentication-Results
 *   field carrying our authserv-id matches a key; every other Authentication-Results field is ignored. No
 *   field of ours (or one that does not parse, or no such method in it): false. Several results of one
 *   method (two DKIM signatures) are a list: any one matching is enough (":count" counts them).
 * route: true when this copy reached the mailbox through a group (":group"), an alias (":alias") or either
 *   (no tag) whose name matches a key. The original recipient is the envelope's ORCPT (set by the milter on
 *   every recipient it expands), routed again with chainmail's router; the mailbox is the final envelope
 *   recipient (uid@routing.mailbox_domain). No ORCPT, or no envelope (e.g. IMAPSieve): false.
 * Defaults as for header tests: :is and i;ascii-casemap. Unknown tags, a second method or route tag, and
 * a key-list of the wrong type are compile-time errors with the line, like any Sieve error.
 *
 * DIAGNOSTICS: when chainmail.conf cannot be loaded or the directory is in trouble, the test raises a Sieve
 * runtime error ("chainmail: ...", in Dovecot's log and the user's sieve log) and the script ends with
 * SIEVE_EXEC_TEMP_FAILURE: LMTP answers 4xx for that recipient and the MTA retries, rather than filing on a
 * guess. It never quietly reads as "false". The runtime trace (sieve-test -t) shows the values matched.
 *
 * SECURITY: header values and the ORCPT are attacker text, handled in C++ (bounded parsing); names and
 * results shown in traces are cut with str_sanitize.
 */
/* lib.h (Dovecot's config.h) must come first: clang-format is off here so that it does not sort it away. */
/* clang-format off */
#include "lib.h"
#include "array.h"
#include "str.h"
#include "str-sanitize.h"
#include "mail-storage.h"
#include "smtp-address.h"
#include "smtp-params.h"

#include "sieve-config.h"
#include "sieve-common.h"
#include "sieve-extensions.h"
#include "sieve-settings.h"
#include "sieve-commands.h"
#include "sieve-code.h"
#include "sieve-comparators.h"
#include "sieve-match-types.h"
#include "sieve-validator.h"
#include "sieve-generator.h"
#include "sieve-interpreter.h"
#include "sieve-runtime.h"
#include "sieve-execute.h"
#include "sieve-dump.h"
#include "sieve-match.h"
#include "sieve-message.h"
#include "sieve-stringlist.h"

#include "chainmail_sieve.h"
/* clang-format on */

#define CHAINMAIL_EXPORT __attribute__((visibility("default")))

#define CHAINMAIL_DEFAULT_CONFIG "/etc/chainmail/chainmail.conf"
#define CHAINMAIL_CONFIG_SETTING "chainmail_config"

extern const struct sieve_extension_def chainmail_extension;

/*
 * Tests and their tags
 */

enum chainmail_operation_code { CHAINMAIL_OPERATION_AUTHRES, CHAINMAIL_OPERATION_ROUTE };

/* Optional operand codes after the comparator and the match type. Each tag is its own code and carries no
 * operand: the code says which method or kind was asked for. */
enum chainmail_optional { OPT_SPF = SIEVE_MATCH_OPT_LAST, OPT_DKIM, OPT_DMARC, OPT_GROUP, OPT_ALIAS };

static bool tag_once_validate(struct sieve_validator* valdtr, struct sieve_ast_argument** arg,
                              struct sieve_command* cmd);

static const struct sieve_argument_def spf_tag = {.identifier = "spf", .validate = tag_once_validate};
static const struct sieve_argument_def dkim_tag = {.identifier = "dkim", .validate = tag_once_validate};
static const struct sieve_argument_def dmarc_tag = {.identifier = "dmarc", .validate = tag_once_validate};
static const struct sieve_argument_def group_tag = {.identifier = "group", .validate = tag_once_validate};
static const struct sieve_argument_def alias_tag = {.identifier = "alias", .validate = tag_once_validate};

/* One method tag for authres, one kind tag for route: a second one is an error, not "the last wins". */
static bool tag_once_validate(struct sieve_validator* valdtr, struct sieve_ast_argument** arg,
                              struct sieve_command* cmd) {
  if (cmd->data != NULL) {
    sieve_argument_validate_error(
        valdtr, *arg, "the %s test takes only one of %s (found :%s after :%s)", sieve_command_identifier(cmd),
        strcmp(sieve_command_identifier(cmd), "authres") == 0 ? ":spf, :dkim and :dmarc"
                                                              : ":group and :alias",
        sieve_ast_argument_tag(*arg), (const char*)cmd->data);
    return FALSE;
  }
  cmd->data = (void*)sieve_ast_argument_tag(*arg);
  *arg = sieve_ast_argument_next(*arg);
  return TRUE;
}

static bool tst_authres_registered(struct sieve_validator* valdtr, const struct sieve_extension* ext,
                                   struct sieve_command_registration* cmd_reg) {
  sieve_comparators_link_tag(valdtr, cmd_reg, SIEVE_MATCH_OPT_COMPARATOR);
  sieve_match_types_link_tags(valdtr, cmd_reg, SIEVE_MATCH_OPT_MATCH_TYPE);
  sieve_validator_register_tag(valdtr, cmd_reg, ext, &spf_tag, OPT_SPF);
  sieve_validator_register_tag(valdtr, cmd_reg, ext, &dkim_tag, OPT_DKIM);
  sieve_validator_register_tag(valdtr, cmd_reg, ext, &dmarc_tag, OPT_DMARC);
  return TRUE;
}

static bool tst_route_registered(struct sieve_validator* valdtr, const struct sieve_extension* ext,
                                 struct sieve_command_registration* cmd_reg) {
  sieve_comparators_link_tag(valdtr, cmd_reg, SIEVE_MATCH_OPT_COMPARATOR);
  sieve_match_types_link_tags(valdtr, cmd_reg, SIEVE_MATCH_OPT_MATCH_TYPE);
  sieve_validator_register_tag(valdtr, cmd_reg, ext, &group_tag, OPT_GROUP);
  sieve_validator_register_tag(valdtr, cmd_reg, ext, &alias_tag, OPT_ALIAS);
  return TRUE;
}

/* Both tests have one positional argument, the key list. */
static bool tst_keylist_validate(struct sieve_validator* valdtr, struct sieve_command* tst) {
  struct sieve_ast_argument* arg = tst->first_positional;
  const struct sieve_match_type mcht_default = SIEVE_MATCH_TYPE_DEFAULT(is_match_type);
  const struct sieve_comparator cmp_default = SIEVE_COMPARATOR_DEFAULT(i_ascii_casemap_comparator);

  if (!sieve_validate_positional_argument(valdtr, tst, arg, "key list", 1, SAAT_STRING_LIST)) return FALSE;
  if (!sieve_validator_argument_activate(valdtr, tst, arg, FALSE)) return FALSE;
  return sieve_match_type_validate(valdtr, tst, arg, &mcht_default, &cmp_default);
}

static const struct sieve_operation_def authres_operation;
static const struct sieve_operation_def route_operation;

static bool tst_authres_generate(const struct sieve_codegen_env* cgenv, struct sieve_command* cmd) {
  sieve_operation_emit(cgenv->sblock, cmd->ext, &authres_operation);
  return sieve_generate_arguments(cgenv, cmd, NULL);
}

static bool tst_route_generate(const struct sieve_codegen_env* cgenv, struct sieve_command* cmd) {
  sieve_operation_emit(cgenv->sblock, cmd->ext, &route_operation);
  return sieve_generate_arguments(cgenv, cmd, NULL);
}

static const struct sieve_command_def authres_test = {
    .identifier = "authres",
    .type = SCT_TEST,
    .positional_args = 1,
    .subtests = 0,
    .block_allowed = FALSE,
    .block_required = FALSE,
    .registered = tst_authres_registered,
    .validate = tst_keylist_validate,
    .generate = tst_authres_generate,
};

static const struct sieve_command_def route_test = {
    .identifier = "route",
    .type = SCT_TEST,
    .positional_args = 1,
    .subtests = 0,
    .block_allowed = FALSE,
    .block_required = FALSE,
    .registered = tst_route_registered,
    .validate = tst_keylist_validate,
    .generate = tst_route_generate,
};

/*
 * Operations: dump
 */

static const char* opt_name(int opt_code) {
  switch (opt_code) {
    case OPT_SPF:
      return "spf";
    case OPT_DKIM:
      return "dkim";
    case OPT_DMARC:
      return "dmarc";
    case OPT_GROUP:
      return "group";
    case OPT_ALIAS:
      return "alias";
    default:
      return NULL;
  }
}

static bool tst_keylist_operation_dump(const struct sieve_dumptime_env* denv, sieve_size_t* address) {
  int opt_code = 0;

  sieve_code_dumpf(denv, "%s", sieve_operation_mnemonic(denv->oprtn));
  sieve_code_descend(denv);
  for (;;) {
    int opt = sieve_match_opr_optional_dump(denv, address, &opt_code);
    if (opt < 0) return FALSE;
    if (opt == 0) break;
    if (opt_name(opt_code) == NULL) return FALSE;
    sieve_code_dumpf(denv, ":%s", opt_name(opt_code));
  }
  return sieve_opr_stringlist_dump(denv, address, "key list");
}

/*
 * Operations: execute
 */

/* The optional operands; *tag is the method or kind code (0 when none was given). */
static int read_optionals(const struct sieve_runtime_env* renv, sieve_size_t* address,
                          struct sieve_comparator* cmp, struct sieve_match_type* mcht, int first, int last,
                          int* tag) {
  int opt_code = 0, ret = SIEVE_EXEC_OK;

  *tag = 0;
  for (;;) {
    int opt = sieve_match_opr_optional_read(renv, address, &opt_code, &ret, cmp, mcht);
    if (opt < 0) return ret;
    if (opt == 0) return SIEVE_EXEC_OK;
    if (opt_code < first || opt_code > last) {
      sieve_runtime_trace_error(renv, "unknown optional operand");
      return SIEVE_EXEC_BIN_CORRUPT;
    }
    *tag = opt_code;
  }
}

/* A string list over the values the C++ side passed back (copied to the data stack). */
struct value_list {
  struct sieve_stringlist strlist;
  ARRAY_TYPE(const_string) values;
  unsigned int index;
  string_t* error;
};

static int value_list_next_item(struct sieve_stringlist* strlist, string_t** str_r) {
  struct value_list* list = (struct value_list*)strlist;

  *str_r = NULL;
  if (list->index >= array_count(&list->values)) return 0;
  *str_r = t_str_new_const(array_idx_elem(&list->values, list->index),
                           strlen(array_idx_elem(&list->values, list->index)));
  list->index++;
  return 1;
}

static void value_list_reset(struct sieve_stringlist* strlist) {
  ((struct value_list*)strlist)->index = 0;
}

static int value_list_get_length(struct sieve_stringlist* strlist) {
  return (int)array_count(&((struct value_list*)strlist)->values);
}

static void value_list_init(struct value_list* list, const struct sieve_runtime_env* renv) {
  i_zero(list);
  list->strlist.runenv = renv;
  list->strlist.exec_status = SIEVE_EXEC_OK;
  list->strlist.next_item = value_list_next_item;
  list->strlist.reset = value_list_reset;
  list->strlist.get_length = value_list_get_length;
  t_array_init(&list->values, 4);
  list->error = t_str_new(128);
}

static void on_value(void* ctx, const char* text) {
  struct value_list* list = ctx;
  const char* copy = t_strdup(text);

  array_push_back(&list->values, &copy);
}

static void on_error(void* ctx, const char* text) {
  struct value_list* list = ctx;

  str_truncate(list->error, 0);
  str_append(list->error, text);
}

static const char* config_path(const struct sieve_runtime_env* renv) {
  const char* path = sieve_setting_get(renv->exec_env->svinst, CHAINMAIL_CONFIG_SETTING);

  return (path != NULL && *path != '\0') ? path : CHAINMAIL_DEFAULT_CONFIG;
}

/* Matches the collected values against the key list and sets the test result. */
static int match_values(const struct sieve_runtime_env* renv, struct sieve_match_type* mcht,
                        struct sieve_comparator* cmp, struct value_list* list,
                        struct sieve_stringlist* key_list) {
  int match, ret;

  /* An empty list goes through sieve_match() too: ":count "eq" "0"" is true for it. */
  if ((match = sieve_match(renv, mcht, cmp, &list->strlist, key_list, &ret)) < 0) return ret;
  sieve_interpreter_set_test_result(renv->interp, match > 0);
  return SIEVE_EXEC_OK;
}

static int trouble(const struct sieve_runtime_env* renv, const char* test, struct value_list* list) {
  sieve_runtime_error(renv, NULL, "%s test: chainmail: %s", test, str_c(list->error));
  return SIEVE_EXEC_TEMP_FAILURE;
}

static int tst_authres_operation_execute(const struct sieve_runtime_env* renv, sieve_size_t* address) {
  struct sieve_match_type mcht = SIEVE_MATCH_TYPE_DEFAULT(is_match_type);
  struct sieve_comparator cmp = SIEVE_COMPARATOR_DEFAULT(i_ascii_casemap_comparator);
  struct sieve_stringlist* key_list;
  enum chainmail_sieve_method method = CHAINMAIL_SIEVE_DMARC;
  const char* const* fields;
  struct value_list list;
  struct mail* mail;
  int tag, ret, field;

  if ((ret = read_optionals(renv, address, &cmp, &mcht, OPT_SPF, OPT_DMARC, &tag)) <= 0) return ret;
  if ((ret = sieve_opr_stringlist_read(renv, address, "key-list", &key_list)) <= 0) return ret;
  if (tag == OPT_SPF)
    method = CHAINMAIL_SIEVE_SPF;
  else if (tag == OPT_DKIM)
    method = CHAINMAIL_SIEVE_DKIM;

  sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS, "authres test (%s)",
                      method == CHAINMAIL_SIEVE_SPF    ? "spf"
                      : method == CHAINMAIL_SIEVE_DKIM ? "dkim"
                                                       : "dmarc");

  mail = sieve_message_get_mail(renv->msgctx);
  if (mail_get_headers(mail, "Authentication-Results", &fields) < 0) {
    return sieve_runtime_mail_error(renv, mail, "authres test: failed to read Authentication-Results");
  }
  value_list_init(&list, renv);
  field = chainmail_sieve_authres(config_path(renv), fields, str_array_length(fields), method, on_value,
                                  on_error, &list);
  if (field == CHAINMAIL_SIEVE_TROUBLE) return trouble(renv, "authres", &list);
  sieve_runtime_trace_descend(renv);
  if (field == CHAINMAIL_SIEVE_NO_FIELD)
    sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS, "no Authentication-Results field of ours");
  else if (field == CHAINMAIL_SIEVE_UNPARSABLE)
    sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS, "our Authentication-Results field does not parse");
  else if (array_count(&list.values) == 0)
    sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS, "no result for the method in our field");
  sieve_runtime_trace_ascend(renv);
  return match_values(renv, &mcht, &cmp, &list, key_list);
}

static int tst_route_operation_execute(const struct sieve_runtime_env* renv, sieve_size_t* address) {
  struct sieve_match_type mcht = SIEVE_MATCH_TYPE_DEFAULT(is_match_type);
  struct sieve_comparator cmp = SIEVE_COMPARATOR_DEFAULT(i_ascii_casemap_comparator);
  const struct sieve_execute_env* eenv = renv->exec_env;
  const struct sieve_message_data* msgdata = eenv->msgdata;
  struct sieve_stringlist* key_list;
  enum chainmail_sieve_route_kind kind = CHAINMAIL_SIEVE_ROUTE_ANY;
  const struct smtp_address *orcpt = NULL, *final_rcpt;
  struct value_list list;
  int tag, ret;

  if ((ret = read_optionals(renv, address, &cmp, &mcht, OPT_GROUP, OPT_ALIAS, &tag)) <= 0) return ret;
  if ((ret = sieve_opr_stringlist_read(renv, address, "key-list", &key_list)) <= 0) return ret;
  if (tag == OPT_GROUP)
    kind = CHAINMAIL_SIEVE_ROUTE_GROUP;
  else if (tag == OPT_ALIAS)
    kind = CHAINMAIL_SIEVE_ROUTE_ALIAS;

  sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS, "route test (%s)",
                      kind == CHAINMAIL_SIEVE_ROUTE_GROUP   ? "group"
                      : kind == CHAINMAIL_SIEVE_ROUTE_ALIAS ? "alias"
                                                            : "group or alias");

  value_list_init(&list, renv);
  /* The ORCPT itself, not sieve_message_get_orig_recipient(), which falls back to the final recipient. */
  if ((eenv->flags & SIEVE_EXECUTE_FLAG_NO_ENVELOPE) == 0 && msgdata->envelope.rcpt_params != NULL)
    orcpt = msgdata->envelope.rcpt_params->orcpt.addr;
  final_rcpt = msgdata->envelope.rcpt_to;
  if (smtp_address_isnull(orcpt) || smtp_address_isnull(final_rcpt) || final_rcpt->localpart == NULL) {
    sieve_runtime_trace_descend(renv);
    sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS, "no ORCPT in the envelope");
    sieve_runtime_trace_ascend(renv);
    return match_values(renv, &mcht, &cmp, &list, key_list);
  }
  if (chainmail_sieve_route(config_path(renv), smtp_address_encode(orcpt), final_rcpt->localpart, kind,
                            on_value, on_error, &list) < 0)
    return trouble(renv, "route", &list);
  if (array_count(&list.values) == 0) {
    sieve_runtime_trace_descend(renv);
    sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS, "ORCPT %s reached %s directly or not at all",
                        str_sanitize(smtp_address_encode(orcpt), 128),
                        str_sanitize(final_rcpt->localpart, 128));
    sieve_runtime_trace_ascend(renv);
  }
  return match_values(renv, &mcht, &cmp, &list, key_list);
}

static const struct sieve_operation_def authres_operation = {
    .mnemonic = "CHAINMAIL_AUTHRES",
    .ext_def = &chainmail_extension,
    .code = CHAINMAIL_OPERATION_AUTHRES,
    .dump = tst_keylist_operation_dump,
    .execute = tst_authres_operation_execute,
};

static const struct sieve_operation_def route_operation = {
    .mnemonic = "CHAINMAIL_ROUTE",
    .ext_def = &chainmail_extension,
    .code = CHAINMAIL_OPERATION_ROUTE,
    .dump = tst_keylist_operation_dump,
    .execute = tst_route_operation_execute,
};

/*
 * Extension
 */

static const struct sieve_operation_def* const chainmail_operations[] = {&authres_operation,
                                                                         &route_operation};

static bool ext_chainmail_validator_load(const struct sieve_extension* ext, struct sieve_validator* valdtr) {
  sieve_validator_register_command(valdtr, ext, &authres_test);
  sieve_validator_register_command(valdtr, ext, &route_test);
  return TRUE;
}

const struct sieve_extension_def chainmail_extension = {
    .name = "vnd.chainmail",
    .validator_load = ext_chainmail_validator_load,
    SIEVE_EXT_DEFINE_OPERATIONS(chainmail_operations),
    SIEVE_EXT_DEFINE_NO_OPERANDS,
};

/*
 * Plugin interface: sieve_plugins = sieve_chainmail loads lib90_sieve_chainmail_plugin.so and calls load
 * for each Sieve instance.
 */

CHAINMAIL_EXPORT extern const char* sieve_chainmail_plugin_version;
CHAINMAIL_EXPORT void sieve_chainmail_plugin_load(struct sieve_instance* svinst, void** context);
CHAINMAIL_EXPORT void sieve_chainmail_plugin_unload(struct sieve_instance* svinst, void* context);
CHAINMAIL_EXPORT void sieve_chainmail_plugin_init(void);
CHAINMAIL_EXPORT void sieve_chainmail_plugin_deinit(void);

const char* sieve_chainmail_plugin_version = PIGEONHOLE_ABI_VERSION;

void sieve_chainmail_plugin_load(struct sieve_instance* svinst, void** context) {
  *context = (void*)sieve_extension_register(svinst, &chainmail_extension, FALSE);
}

void sieve_chainmail_plugin_unload(struct sieve_instance* svinst ATTR_UNUSED, void* context) {
  if (context != NULL) sieve_extension_unregister((const struct sieve_extension*)context);
}

void sieve_chainmail_plugin_init(void) {}

void sieve_chainmail_plugin_deinit(void) {
  chainmail_sieve_release();
}
