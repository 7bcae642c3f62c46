// config.h - chainmail.conf: the model and the one table that declares every parameter.
//
// Each parameter is declared once, in params() (config.cc), with its key, default, bounds and help; nothing
// else holds a default. adapters/config_loader reads the TOML file into a Config through that table, and
// `chainmail config defaults` prints it. This file does no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace chainmail {

// key -> one or more values; keys are kept as written (the router normalises them).
using StringTable = std::map<std::string, std::vector<std::string>>;

struct Config {
  struct Domains {
    std::string main;
    std::vector<std::string> aliases;
    std::string internal;
  } domains;

  struct Routing {
    std::string recipient_delimiter;
    std::string mailbox_domain;
    std::string service_domain;
    std::int64_t max_depth = 0;
    std::int64_t max_expansion = 0;
  } routing;

  StringTable transport;  // address -> service name (exactly one value)
  StringTable aliases;    // address or bare local part -> targets

  struct Directory {
    std::vector<std::string> uris;
    std::string ldif_file;
    std::string bind_dn;
    std::string bind_password;
    std::string bind_password_file;
    std::string base_dn;
    std::string user_base;
    std::string group_base;
    std::string user_filter;
    std::string group_filter;
    std::string mail_attribute;
    std::string uid_attribute;
    std::string forward_attribute;
    std::string member_attribute;
    std::string lock_attribute;
    bool starttls = false;
    std::string ca_file;
    std::int64_t connect_timeout_ms = 0;
    std::int64_t search_timeout_ms = 0;
    std::int64_t size_limit = 0;
    std::int64_t max_connections = 0;
  } directory;

  struct Cache {
    std::int64_t max_entries = 0;
    std::int64_t positive_ttl_s = 0;
    std::int64_t negative_ttl_s = 0;
  } cache;

  struct Socketmap {
    std::string listen;
    std::int64_t max_request = 0;
    std::int64_t max_reply = 0;
    std::int64_t idle_timeout_ms = 0;
    std::int64_t max_clients = 0;
  } socketmap;

  struct Milter {
    std::string listen;
    std::string user;
    std::string log;
    std::string authserv_id;
    std::vector<std::string> trusted_networks;
    std::vector<std::string> signing_daemons;
    bool tempfail_on_dns_error = true;
    std::int64_t max_recipients = 0;
    std::int64_t max_headers = 0;
    std::int64_t timeout_s = 0;
  } milter;

  struct Dns {
    std::vector<std::string> resolvers;
    std::int64_t timeout_ms = 0;
    std::string trust_anchor_file;
    std::int64_t cache_entries = 0;
  } dns;

  struct Spf {
    bool reject_helo_fail = true;
    bool reject_mail_from_fail = true;
    std::int64_t max_void_lookups = 0;
  } spf;

  struct Dkim {
    std::int64_t max_signatures = 0;
    std::int64_t min_key_bits = 0;
    StringTable signing;  // From domain -> "selector:/path/key.pem" entries
  } dkim;

  struct Dmarc {
    std::string public_suffix_list;
    bool enforce_reject = true;
    bool enforce_quarantine = true;
  } dmarc;

  // Dovecot auth plugin (dovecot-plugin/auth): who may log in, and the userdb answer.
  struct Auth {
    std::string login_filter;
    std::string gate_group;
    std::string gate_attribute;
    std::string uid;
    std::string gid;
    std::string home;
    std::string mail_location;
    std::string sieve;
    std::string sieve_dir;
    std::int64_t max_login_length = 0;
    std::int64_t max_password_length = 0;
  } auth;

  // Dovecot LMTP hook (dovecot-plugin/lmtp): folders for group and alias mail, the trace header.
  struct Lmtp {
    std::string folder_template;
    std::string opt_out_attribute;
    std::string trace_header;
    std::int64_t max_folder_length = 0;
  } lmtp;

  // service-mail (the pipe transport): recipient -> "kind" or "kind:argument" (dmarc-reports: a Maildir).
  StringTable services;
  struct ServiceMail {
    std::string log;
  } service_mail;

  // The dmarc-reports service: where reports are filed and the limits on what is parsed.
  struct DmarcReports {
    std::string maildir;
    std::string folder_new;
    std::string folder_invalid;
    std::string folder_failures;
    std::int64_t max_message_bytes = 0;
    std::int64_t max_decompressed_bytes = 0;
    std::int64_t max_zip_members = 0;
    std::int64_t max_xml_depth = 0;
    std::int64_t parse_threads = 0;
  } dmarc_reports;

  // The autoreply service: the reply (a template, or a command's output), who sends it, the rate limit.
  struct Autoreply {
    std::string from;
    std::string subject;
    std::string body;
    std::vector<std::string> command;
    std::int64_t command_timeout_s = 0;
    std::int64_t max_output_bytes = 0;
    std::int64_t period_s = 0;
    std::string state_dir;
    std::int64_t max_state_entries = 0;
    std::string sendmail;
    std::string sendmail_config;
    std::int64_t sendmail_timeout_s = 0;
  } autoreply;
  // Named autoreply profiles, [autoreply.NAME] (a service "autoreply:NAME"): each starts as a copy of
  // [autoreply] and overrides what its table sets.
  std::map<std::string, Autoreply, std::less<>> autoreply_profiles;

  // The exec service: a command run with the message on stdin.
  struct Exec {
    std::vector<std::string> command;
    std::int64_t timeout_s = 0;
    std::int64_t max_output_bytes = 0;
    std::int64_t failure_exit = 0;
  } exec;

  // domains.main, the aliases and the internal domain: the domains whose recipients the chain decides.
  bool is_hosted_domain(std::string_view domain) const;

  // The user base and group base as absolute DNs (relative ones are joined with base_dn).
  std::string user_base_dn() const;
  std::string group_base_dn() const;
};

// One parameter's declaration. `field` reaches the member it fills.
template <typename T>
using Field = T& (*)(Config&);

struct IntParam {
  std::int64_t def, min, max;
  Field<std::int64_t> field;
};
struct BoolParam {
  bool def;
  Field<bool> field;
};
struct StringParam {
  std::string_view def;
  Field<std::string> field;
};
struct ListParam {
  std::span<const std::string_view> def;
  Field<std::vector<std::string>> field;
};
// A TOML table of address keys; `single` tables take one string per key, others a string or an array.
struct TableParam {
  bool single;
  Field<StringTable> field;
  std::string_view example = {};  // a sample entry for `config defaults`, when the address forms do not fit
};

struct Param {
  std::string_view key;  // "section.name", or "section" for a table parameter
  std::string_view help;
  std::variant<IntParam, BoolParam, StringParam, ListParam, TableParam> kind;
};

std::span<const Param> params();

// A Config holding every default.
Config default_config();

struct ConfigError {
  std::string key;  // the parameter (and table key) concerned, for locating it in the file
  std::string message;
};

// A [services] entry split into its kind and argument ("dmarc-reports:/srv/Maildir" -> kind, argument).
struct ServiceSpec {
  std::string kind;
  std::string argument;  // empty when the entry has none
};
ServiceSpec parse_service_spec(std::string_view value);

// The autoreply settings of a service: [autoreply] for "autoreply", [autoreply.NAME] for "autoreply:NAME";
// nullptr when there is no such profile.
const Config::Autoreply* autoreply_profile(const Config& config, const ServiceSpec& spec);

// The argv of an exec service: its argument split at blanks (no shell, no quoting), else exec.command.
std::vector<std::string> exec_argv(const Config& config, const ServiceSpec& spec);

// The service kinds service-mail knows; validate() refuses any other.
inline constexpr std::string_view kServiceDmarcReports = "dmarc-reports";
inline constexpr std::string_view kServiceAutoreply = "autoreply";
inline constexpr std::string_view kServiceExec = "exec";

// Checks that go beyond one value's type and bounds: domains are valid and distinct, table keys and targets
// are addresses, an LDAP or LDIF directory is configured, the delimiter is sane.
std::vector<ConfigError> validate(const Config& config);

}  // namespace chainmail
