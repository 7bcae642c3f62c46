/* chainmail_sieve.h - the C ABI between the Pigeonhole glue (ext_chainmail.c) and chainmail's C++
 * (chainmail_sieve.cc): the two decisions of vnd.chainmail, with everything Pigeonhole-specific left in C.
 *
 * Pigeonhole's headers use `class` and `delete` as member names and a forward enum declaration, which C++
 * rejects, so the glue is C; C++ never sees them. Every function here is noexcept: a C++ exception is
 * caught inside and reported through on_error as trouble.
 *
 * Results come back through callbacks, called before the function returns: on_value once per value (the
 * pointer is valid only during the call: copy it), on_error at most once with a one-line message.
 * The configuration (chainmail.conf at config_path) is loaded on first use and kept for the life of the
 * process, with the directory connections it opens; a file that cannot be loaded is tried again next time.
 *
 * SECURITY: field values and ORCPT are attacker text; they are only parsed (core/authres, core/address) and
 * routed (core/router), never echoed unbounded: messages passed to on_error are cut to a sane length.
 */
#ifndef CHAINMAIL_SIEVE_H
#define CHAINMAIL_SIEVE_H

#include <stddef.h>

#ifdef __cplusplus
#define CHAINMAIL_SIEVE_NOEXCEPT noexcept
extern "C" {
#else
#define CHAINMAIL_SIEVE_NOEXCEPT
#endif

typedef void chainmail_sieve_text_fn(void* ctx, const char* text);

enum chainmail_sieve_method { CHAINMAIL_SIEVE_SPF = 0, CHAINMAIL_SIEVE_DKIM = 1, CHAINMAIL_SIEVE_DMARC = 2 };

/* What authres found: below 0 trouble (on_error was called: the configuration cannot be loaded). */
enum chainmail_sieve_authres_field {
  CHAINMAIL_SIEVE_TROUBLE = -1,
  CHAINMAIL_SIEVE_NO_FIELD = 0,   /* no Authentication-Results field with our authserv-id */
  CHAINMAIL_SIEVE_UNPARSABLE = 1, /* the topmost one of ours does not parse: no results */
  CHAINMAIL_SIEVE_OURS = 2        /* results of the method (possibly none) were passed to on_value */
};

/* The results of `method` in the topmost of `fields` (Authentication-Results values, topmost first) whose
 * authserv-id is ours (milter.authserv_id, else domains.main, of the configuration). */
int chainmail_sieve_authres(const char* config_path, const char* const* fields, size_t n_fields,
                            enum chainmail_sieve_method method, chainmail_sieve_text_fn* on_value,
                            chainmail_sieve_text_fn* on_error, void* ctx) CHAINMAIL_SIEVE_NOEXCEPT;

enum chainmail_sieve_route_kind {
  CHAINMAIL_SIEVE_ROUTE_ANY = 0,
  CHAINMAIL_SIEVE_ROUTE_GROUP = 1,
  CHAINMAIL_SIEVE_ROUTE_ALIAS = 2
};

/* Routes `orcpt` (the original recipient) with chainmail's router and passes the names of the groups and/or
 * aliases on the path that reaches the mailbox `mailbox_local`@routing.mailbox_domain (the LMTP recipient's
 * local part; its detail is ignored). Returns the number of names, or -1 on trouble (on_error was called:
 * directory trouble, or the configuration cannot be loaded): never a silent "none". */
int chainmail_sieve_route(const char* config_path, const char* orcpt, const char* mailbox_local,
                          enum chainmail_sieve_route_kind kind, chainmail_sieve_text_fn* on_value,
                          chainmail_sieve_text_fn* on_error, void* ctx) CHAINMAIL_SIEVE_NOEXCEPT;

/* Frees the configuration and the directory (plugin deinit). */
void chainmail_sieve_release(void) CHAINMAIL_SIEVE_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
