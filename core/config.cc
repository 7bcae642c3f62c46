#include "config.h"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "address.h"
#include "maildir_folder.h"
#include "network.h"

namespace chainmail {
namespace {

constexpr std::array<std::string_view, 0> kNoStrings{};
constexpr std::array<std::string_view, 2> kLoopback{"127.0.0.0/8", "::1/128"};
constexpr std::array<std::string_view, 1> kOriginating{"ORIGINATING"};
constexpr std::array<std::string_view, 3> kDemoAliasDomains{"pydis.com", "pythondiscord.com", "owlcorp.uk"};

// RFC 5322 section 3.6.8: a field name is printable US-ASCII except the colon.
bool is_header_name(std::string_view name) {
  for (const char ch : name) {
    if (ch < 33 || ch > 126 || ch == ':') return false;
  }
  return !name.empty();
}

// Every parameter of chainmail.conf. Keep entries grouped by section, in the order the sample file uses.
const std::array kParams = {
    Param{"domains.main", "The main hosted domain; domain aliases and the directory's mail values use it.",
          StringParam{"pydis.wtf", [](Config& c) -> std::string& { return c.domains.main; }}},
    Param{"domains.aliases", "Domains that reach the same people as the main domain (x@alias = x@main).",
          ListParam{kDemoAliasDomains,
                    [](Config& c) -> std::vector<std::string>& { return c.domains.aliases; }}},
    Param{"domains.internal", "The internal domain of service accounts (rule e). Empty: none.",
          StringParam{"int.pydis.wtf", [](Config& c) -> std::string& { return c.domains.internal; }}},

    Param{"routing.recipient_delimiter",
          "Characters that separate a local part from its detail (joe+lists); each one is a delimiter. "
          "The detail is kept through every expansion, as Postfix does. Empty: no details.",
          StringParam{"+", [](Config& c) -> std::string& { return c.routing.recipient_delimiter; }}},
    Param{"routing.mailbox_domain",
          "Domain of mailbox targets (uid@mailbox_domain); Postfix sends it to Dovecot.",
          StringParam{"localhost", [](Config& c) -> std::string& { return c.routing.mailbox_domain; }}},
    Param{"routing.service_domain",
          "Domain of service targets (service@service_domain); Postfix pipes it to service-mail.",
          StringParam{"service-mail.localhost",
                      [](Config& c) -> std::string& { return c.routing.service_domain; }}},
    Param{"routing.max_depth",
          "Deepest nesting of groups and aliases followed; deeper is trouble (mail waits).",
          IntParam{20, 1, 1000, [](Config& c) -> std::int64_t& { return c.routing.max_depth; }}},
    Param{"routing.max_expansion",
          "Most addresses one recipient may expand to (all steps together); more is trouble (mail waits).",
          IntParam{1000, 1, 1000000, [](Config& c) -> std::int64_t& { return c.routing.max_expansion; }}},

    Param{"transport", "Transport rules (rule a): address = \"service\". Wins over every other rule.",
          TableParam{true, [](Config& c) -> StringTable& { return c.transport; }}},
    Param{"aliases",
          "Aliases (rule f), like a Postfix virtual file: address or bare local part (every hosted domain) = "
          "target or [targets]; a bare target is on the main domain. Targets are routed again.",
          TableParam{false, [](Config& c) -> StringTable& { return c.aliases; }}},

    Param{"directory.uris",
          "LDAP servers (ldap://, ldaps://), tried in order. Empty: use directory.ldif_file.",
          ListParam{kNoStrings, [](Config& c) -> std::vector<std::string>& { return c.directory.uris; }}},
    Param{"directory.ldif_file",
          "LDIF file used as the directory when no URI is set (relative to this file).",
          StringParam{"", [](Config& c) -> std::string& { return c.directory.ldif_file; }}},
    Param{"directory.bind_dn", "DN to bind as. Empty: anonymous.",
          StringParam{"", [](Config& c) -> std::string& { return c.directory.bind_dn; }}},
    Param{"directory.bind_password", "Bind password (prefer bind_password_file).",
          StringParam{"", [](Config& c) -> std::string& { return c.directory.bind_password; }}},
    Param{"directory.bind_password_file", "File holding the bind password (first line).",
          StringParam{"", [](Config& c) -> std::string& { return c.directory.bind_password_file; }}},
    Param{"directory.base_dn", "Base DN of the directory.",
          StringParam{"dc=example,dc=org", [](Config& c) -> std::string& { return c.directory.base_dn; }}},
    Param{
        "directory.user_base", "Where users are; relative to base_dn unless it ends with it.",
        StringParam{"cn=users,cn=accounts", [](Config& c) -> std::string& { return c.directory.user_base; }}},
    Param{"directory.group_base", "Where groups are; relative to base_dn unless it ends with it.",
          StringParam{"cn=groups,cn=accounts",
                      [](Config& c) -> std::string& { return c.directory.group_base; }}},
    Param{"directory.user_filter", "Filter finding a user by address: %s address, %u local part, %d domain.",
          StringParam{"(mail=%s)", [](Config& c) -> std::string& { return c.directory.user_filter; }}},
    Param{"directory.group_filter", "Filter finding a group by name: %u the name.",
          StringParam{"(cn=%u)", [](Config& c) -> std::string& { return c.directory.group_filter; }}},
    Param{"directory.mail_attribute", "Attribute holding a user's address.",
          StringParam{"mail", [](Config& c) -> std::string& { return c.directory.mail_attribute; }}},
    Param{"directory.uid_attribute", "Attribute naming a user's mailbox.",
          StringParam{"uid", [](Config& c) -> std::string& { return c.directory.uid_attribute; }}},
    Param{"directory.forward_attribute", "Attribute holding a forwarding address (rule b).",
          StringParam{"registeredAddress",
                      [](Config& c) -> std::string& { return c.directory.forward_attribute; }}},
    Param{"directory.member_attribute", "Attribute listing a group's member DNs.",
          StringParam{"member", [](Config& c) -> std::string& { return c.directory.member_attribute; }}},
    Param{"directory.lock_attribute", "Attribute that marks a locked account (TRUE).",
          StringParam{"nsAccountLock", [](Config& c) -> std::string& { return c.directory.lock_attribute; }}},
    Param{"directory.starttls", "Issue StartTLS on ldap:// connections and require it to succeed.",
          BoolParam{false, [](Config& c) -> bool& { return c.directory.starttls; }}},
    Param{"directory.ca_file", "CA certificates to verify the server with (ldaps:// and StartTLS).",
          StringParam{"", [](Config& c) -> std::string& { return c.directory.ca_file; }}},
    Param{"directory.connect_timeout_ms", "Time to connect to one server before trying the next.",
          IntParam{2000, 10, 600000,
                   [](Config& c) -> std::int64_t& { return c.directory.connect_timeout_ms; }}},
    Param{
        "directory.search_timeout_ms", "Time one bind or search may take before it is trouble.",
        IntParam{5000, 10, 600000, [](Config& c) -> std::int64_t& { return c.directory.search_timeout_ms; }}},
    Param{"directory.size_limit", "Most entries one search may return; more is trouble.",
          IntParam{1000, 1, 1000000, [](Config& c) -> std::int64_t& { return c.directory.size_limit; }}},
    Param{"directory.max_connections", "Connections kept open for reuse across lookups and threads.",
          IntParam{8, 1, 1024, [](Config& c) -> std::int64_t& { return c.directory.max_connections; }}},

    Param{"cache.max_entries", "Directory answers kept in memory. 0: no cache.",
          IntParam{100000, 0, 100000000, [](Config& c) -> std::int64_t& { return c.cache.max_entries; }}},
    Param{"cache.positive_ttl_s", "Seconds a found entry is reused.",
          IntParam{60, 0, 86400, [](Config& c) -> std::int64_t& { return c.cache.positive_ttl_s; }}},
    Param{"cache.negative_ttl_s", "Seconds a not-found answer is reused. Trouble is never cached.",
          IntParam{10, 0, 86400, [](Config& c) -> std::int64_t& { return c.cache.negative_ttl_s; }}},

    Param{"socketmap.listen", "Where the socketmap server listens: inet:HOST:PORT or unix:PATH.",
          StringParam{"inet:127.0.0.1:10027", [](Config& c) -> std::string& { return c.socketmap.listen; }}},
    Param{"socketmap.max_request",
          "Largest request netstring accepted (octets); larger closes the connection.",
          IntParam{10000, 64, 1000000, [](Config& c) -> std::int64_t& { return c.socketmap.max_request; }}},
    Param{"socketmap.max_reply", "Largest reply (octets); Postfix's socketmap_max_reply_size is 100000.",
          IntParam{100000, 64, 10000000, [](Config& c) -> std::int64_t& { return c.socketmap.max_reply; }}},
    Param{
        "socketmap.idle_timeout_ms", "A client silent this long, or this slow to send a request, is dropped.",
        IntParam{30000, 10, 3600000, [](Config& c) -> std::int64_t& { return c.socketmap.idle_timeout_ms; }}},
    Param{"socketmap.max_clients", "Connections served at once; more wait in the listen queue.",
          IntParam{64, 1, 10000, [](Config& c) -> std::int64_t& { return c.socketmap.max_clients; }}},

    Param{"auth.login_filter",
          "Filter finding the entry a login names, inside directory.user_base: %u the uid the login gives "
          "(a bare name, or the local part of an address on a hosted domain), %s that address on the main "
          "domain (or on the internal domain for a service account). Values are escaped.",
          StringParam{"(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%s)))",
                      [](Config& c) -> std::string& { return c.auth.login_filter; }}},
    Param{"auth.gate_group",
          "Group (cn, under directory.group_base) a user must be in to log in. Empty: no gate.",
          StringParam{"mailusers", [](Config& c) -> std::string& { return c.auth.gate_group; }}},
    Param{"auth.gate_attribute", "Attribute of a user entry that lists the DNs of its groups.",
          StringParam{"memberOf", [](Config& c) -> std::string& { return c.auth.gate_attribute; }}},
    Param{"auth.uid", "System user (name or number) that owns the mail of every user (userdb uid).",
          StringParam{"vmail", [](Config& c) -> std::string& { return c.auth.uid; }}},
    Param{"auth.gid", "System group (name or number) of that mail (userdb gid).",
          StringParam{"vmail", [](Config& c) -> std::string& { return c.auth.gid; }}},
    Param{"auth.home", "Home directory template (userdb home): %u the uid, %d the main domain.",
          StringParam{"/var/vmail/%d/%u", [](Config& c) -> std::string& { return c.auth.home; }}},
    Param{"auth.mail_location", "Mail location template (userdb mail); ~ is the home directory.",
          StringParam{"maildir:~/Maildir", [](Config& c) -> std::string& { return c.auth.mail_location; }}},
    Param{"auth.sieve", "The user's active Sieve script (userdb sieve). Empty: none.",
          StringParam{"~/.dovecot.sieve", [](Config& c) -> std::string& { return c.auth.sieve; }}},
    Param{"auth.sieve_dir", "Where the user's Sieve scripts live (userdb sieve_dir). Empty: none.",
          StringParam{"~/sieve", [](Config& c) -> std::string& { return c.auth.sieve_dir; }}},
    Param{"auth.max_login_length", "Longest login name accepted; a longer one is refused without a lookup.",
          IntParam{320, 16, 4096, [](Config& c) -> std::int64_t& { return c.auth.max_login_length; }}},
    Param{"auth.max_password_length", "Longest password accepted; a longer one is refused without a bind.",
          IntParam{1024, 16, 65536, [](Config& c) -> std::int64_t& { return c.auth.max_password_length; }}},

    Param{"lmtp.folder_template",
          "Folder for mail that reached a user through a group or alias: %n its name (sanitised). "
          "Empty: always INBOX.",
          StringParam{"%n", [](Config& c) -> std::string& { return c.lmtp.folder_template; }}},
    Param{"lmtp.opt_out_attribute",
          "User attribute that, when TRUE, keeps group and alias mail in INBOX. Empty: nobody opts out.",
          StringParam{"", [](Config& c) -> std::string& { return c.lmtp.opt_out_attribute; }}},
    Param{"lmtp.trace_header",
          "Header added to each delivered copy (original recipient -> rule -> mailbox); the same header "
          "arriving from outside is removed.",
          StringParam{"X-Chainmail-Route", [](Config& c) -> std::string& { return c.lmtp.trace_header; }}},
    Param{"lmtp.max_folder_length",
          "Longest folder name made from directory data; longer falls back to INBOX.",
          IntParam{100, 8, 1000, [](Config& c) -> std::int64_t& { return c.lmtp.max_folder_length; }}},

    Param{
        "services",
        "Service-mail recipients (Postfix pipes their mail to chainmail-service-mail): address or bare local "
        "part = \"kind\" or \"kind:argument\". Kinds: dmarc-reports (argument: the Maildir to file into; "
        "default dmarc_reports.maildir), autoreply (no argument: [autoreply]; argument NAME: the profile "
        "[autoreply.NAME], which overrides [autoreply] key by key), exec (argument: the command, "
        "split at blanks, no shell; default exec.command).",
        TableParam{true, [](Config& c) -> StringTable& { return c.services; },
                   "\"dmarc\" = \"dmarc-reports:/var/vmail/int.pydis.wtf/dmarc/Maildir\""}},
    Param{"service_mail.log", "Where chainmail-service-mail logs: syslog (mail facility) or stderr.",
          StringParam{"syslog", [](Config& c) -> std::string& { return c.service_mail.log; }}},

    Param{"dmarc_reports.maildir",
          "Maildir++ root of the DMARC service account (a dmarc-reports service without an argument files "
          "here). Folders are created and subscribed on first use.",
          StringParam{"/var/vmail/int.pydis.wtf/dmarc/Maildir",
                      [](Config& c) -> std::string& { return c.dmarc_reports.maildir; }}},
    Param{"dmarc_reports.folder_new", "Folder for valid aggregate reports (the DMARC exporter reads it).",
          StringParam{"Reports.New", [](Config& c) -> std::string& { return c.dmarc_reports.folder_new; }}},
    Param{"dmarc_reports.folder_invalid", "Folder for aggregate reports that do not parse or are unsafe.",
          StringParam{"Reports.Invalid",
                      [](Config& c) -> std::string& { return c.dmarc_reports.folder_invalid; }}},
    Param{"dmarc_reports.folder_failures", "Folder for failure reports (RFC 6591 and non-ARF ones).",
          StringParam{"Failures", [](Config& c) -> std::string& { return c.dmarc_reports.folder_failures; }}},
    Param{"dmarc_reports.max_message_bytes",
          "Largest message read from Postfix; a larger one is refused (permanent, EX_DATAERR).",
          IntParam{64 << 20, 1024, std::int64_t{1} << 32,
                   [](Config& c) -> std::int64_t& { return c.dmarc_reports.max_message_bytes; }}},
    Param{"dmarc_reports.max_decompressed_bytes",
          "Most bytes a report may decompress to (all archive members together); more is unsafe (Invalid).",
          IntParam{32 << 20, 1024, std::int64_t{1} << 32,
                   [](Config& c) -> std::int64_t& { return c.dmarc_reports.max_decompressed_bytes; }}},
    Param{"dmarc_reports.max_zip_members", "Most members a zipped report may hold; more is unsafe (Invalid).",
          IntParam{16, 1, 10000, [](Config& c) -> std::int64_t& { return c.dmarc_reports.max_zip_members; }}},
    Param{"dmarc_reports.max_xml_depth", "Deepest element nesting parsed in a report; deeper is Invalid.",
          IntParam{32, 8, 1000, [](Config& c) -> std::int64_t& { return c.dmarc_reports.max_xml_depth; }}},
    Param{"dmarc_reports.parse_threads",
          "Threads `chainmail dmarc` gives one large report (256 KiB-8 MiB): 1 reads it through, 2 reads its "
          "halves at once (faster only where a second CPU is cheap to share: docs/dmarc.md).",
          IntParam{1, 1, 2, [](Config& c) -> std::int64_t& { return c.dmarc_reports.parse_threads; }}},

    Param{"autoreply.from", "From address of replies. Empty: the address the message was sent to.",
          StringParam{"", [](Config& c) -> std::string& { return c.autoreply.from; }}},
    Param{"autoreply.subject", "Subject of replies; %s is the incoming subject (cleaned, cut to 200).",
          StringParam{"Re: %s", [](Config& c) -> std::string& { return c.autoreply.subject; }}},
    Param{"autoreply.body", "Body of replies when autoreply.command is empty.",
          StringParam{"This address is an automated service; your message was received.",
                      [](Config& c) -> std::string& { return c.autoreply.body; }}},
    Param{"autoreply.command",
          "Command whose output is the reply body (argv, no shell; run with a clean environment). Empty: the "
          "body template.",
          ListParam{kNoStrings, [](Config& c) -> std::vector<std::string>& { return c.autoreply.command; }}},
    Param{"autoreply.command_timeout_s", "Seconds autoreply.command may run; after that, no reply (75).",
          IntParam{10, 1, 600, [](Config& c) -> std::int64_t& { return c.autoreply.command_timeout_s; }}},
    Param{"autoreply.max_output_bytes", "Most output of autoreply.command used; more is cut.",
          IntParam{65536, 1, 16777216,
                   [](Config& c) -> std::int64_t& { return c.autoreply.max_output_bytes; }}},
    Param{"autoreply.period_s", "At most one reply per sender in this many seconds.",
          IntParam{86400, 1, 31536000, [](Config& c) -> std::int64_t& { return c.autoreply.period_s; }}},
    Param{"autoreply.state_dir",
          "Directory of the per-sender reply times (one file each); writable by the service-mail user.",
          StringParam{"/var/lib/chainmail/autoreply",
                      [](Config& c) -> std::string& { return c.autoreply.state_dir; }}},
    Param{"autoreply.max_state_entries",
          "Most senders remembered; when full of unexpired entries, no reply is sent (never a flood).",
          IntParam{100000, 10, 10000000,
                   [](Config& c) -> std::int64_t& { return c.autoreply.max_state_entries; }}},
    Param{"autoreply.sendmail", "Postfix's sendmail, run as sendmail -i -f <> -- SENDER.",
          StringParam{"/usr/sbin/sendmail", [](Config& c) -> std::string& { return c.autoreply.sendmail; }}},
    Param{"autoreply.sendmail_config",
          "Postfix configuration directory for sendmail (its -C); empty: sendmail's default. For a second "
          "Postfix instance.",
          StringParam{"", [](Config& c) -> std::string& { return c.autoreply.sendmail_config; }}},
    Param{"autoreply.sendmail_timeout_s", "Seconds sendmail may take to accept the reply.",
          IntParam{60, 1, 600, [](Config& c) -> std::int64_t& { return c.autoreply.sendmail_timeout_s; }}},

    Param{"exec.command",
          "Command of exec services without an argument (argv, no shell); the message is on its stdin, the "
          "environment holds only PATH, SENDER, RECIPIENT, ORIGINAL_RECIPIENT and QUEUE_ID.",
          ListParam{kNoStrings, [](Config& c) -> std::vector<std::string>& { return c.exec.command; }}},
    Param{"exec.timeout_s", "Seconds the command may run; then its process group is killed (75).",
          IntParam{60, 1, 3600, [](Config& c) -> std::int64_t& { return c.exec.timeout_s; }}},
    Param{"exec.max_output_bytes",
          "Most output (stdout and stderr) the command may write; more kills it (75).",
          IntParam{65536, 1, 16777216, [](Config& c) -> std::int64_t& { return c.exec.max_output_bytes; }}},
    Param{"exec.failure_exit",
          "Exit status for a command exit outside 0 and sysexits 64-78 (those pass through): 75 retries, "
          "69 (EX_UNAVAILABLE) or another 64-78 bounces.",
          IntParam{75, 64, 78, [](Config& c) -> std::int64_t& { return c.exec.failure_exit; }}},

    Param{
        "milter.listen",
        "Where chainmail-milter listens, in libmilter's syntax: unix:PATH or inet:PORT@HOST (TCP_NODELAY is "
        "set, so replies are not held back by Nagle's algorithm).",
        StringParam{"unix:/run/chainmail/milter.sock",
                    [](Config& c) -> std::string& { return c.milter.listen; }}},
    Param{"milter.user", "User the milter runs as once its sockets are open. Empty: stay as started.",
          StringParam{"", [](Config& c) -> std::string& { return c.milter.user; }}},
    Param{"milter.log", "Where the milter logs: syslog (mail facility) or stderr.",
          StringParam{"syslog", [](Config& c) -> std::string& { return c.milter.log; }}},
    Param{"milter.authserv_id",
          "The authserv-id of our Authentication-Results headers (RFC 8601). Empty: domains.main.",
          StringParam{"", [](Config& c) -> std::string& { return c.milter.authserv_id; }}},
    Param{
        "milter.trusted_networks",
        "Client networks (CIDR) whose mail is not validated as inbound mail (it is signed if it has a key).",
        ListParam{kLoopback,
                  [](Config& c) -> std::vector<std::string>& { return c.milter.trusted_networks; }}},
    Param{
        "milter.signing_daemons",
        "Values of Postfix's {daemon_name} macro (milter_macro_daemon_name) whose mail is outbound: signed, "
        "not validated. SASL-authenticated mail is always outbound.",
        ListParam{kOriginating,
                  [](Config& c) -> std::vector<std::string>& { return c.milter.signing_daemons; }}},
    Param{"milter.tempfail_on_dns_error",
          "DNS trouble during validation (SPF, DKIM or DMARC temperror) answers 451 instead of delivering.",
          BoolParam{true, [](Config& c) -> bool& { return c.milter.tempfail_on_dns_error; }}},
    Param{"milter.max_recipients", "Recipients accepted per message; more get 452 4.5.3.",
          IntParam{1000, 1, 100000, [](Config& c) -> std::int64_t& { return c.milter.max_recipients; }}},
    Param{"milter.max_headers", "Header fields examined per message; a message with more is refused (552).",
          IntParam{1000, 10, 100000, [](Config& c) -> std::int64_t& { return c.milter.max_headers; }}},
    Param{"milter.timeout_s", "Seconds the milter waits for the MTA before dropping a connection.",
          IntParam{300, 1, 3600, [](Config& c) -> std::int64_t& { return c.milter.timeout_s; }}},

    Param{"dns.resolvers",
          "Recursive resolvers or forwarders (ADDR or ADDR@PORT) the checks ask. Empty: /etc/resolv.conf.",
          ListParam{kNoStrings, [](Config& c) -> std::vector<std::string>& { return c.dns.resolvers; }}},
    Param{"dns.timeout_ms", "Longest wait for one DNS answer; longer is trouble (temperror).",
          IntParam{5000, 100, 60000, [](Config& c) -> std::int64_t& { return c.dns.timeout_ms; }}},
    Param{"dns.cache_entries",
          "DNS answers kept in the milter's own memory (by their TTL, trouble never), so repeated questions "
          "cost "
          "no round trip to libunbound. 0: none.",
          IntParam{20000, 0, 1000000, [](Config& c) -> std::int64_t& { return c.dns.cache_entries; }}},
    Param{"dns.trust_anchor_file",
          "DNSSEC trust anchor (e.g. /usr/share/dns/root.key). Empty: no validation.",
          StringParam{"", [](Config& c) -> std::string& { return c.dns.trust_anchor_file; }}},

    Param{"spf.reject_helo_fail", "Reject (550 5.7.23) when the HELO name's SPF result is fail.",
          BoolParam{true, [](Config& c) -> bool& { return c.spf.reject_helo_fail; }}},
    Param{"spf.reject_mail_from_fail", "Reject (550 5.7.23) when the MAIL FROM domain's SPF result is fail.",
          BoolParam{true, [](Config& c) -> bool& { return c.spf.reject_mail_from_fail; }}},
    Param{"spf.max_void_lookups", "DNS lookups answering no data allowed per check (RFC 7208 4.6.4).",
          IntParam{2, 0, 100, [](Config& c) -> std::int64_t& { return c.spf.max_void_lookups; }}},

    Param{"dkim.max_signatures", "DKIM signatures verified per message; further ones are not checked.",
          IntParam{5, 1, 50, [](Config& c) -> std::int64_t& { return c.dkim.max_signatures; }}},
    Param{"dkim.min_key_bits", "Smallest RSA key accepted for verification (RFC 8301: 1024).",
          IntParam{1024, 512, 16384, [](Config& c) -> std::int64_t& { return c.dkim.min_key_bits; }}},
    Param{"dkim.signing",
          "Signing keys: From domain = [\"selector:/path/key.pem\", ...] (RSA or Ed25519 PEM; one signature "
          "per entry, so a domain can sign with both).",
          TableParam{false, [](Config& c) -> StringTable& { return c.dkim.signing; },
                     "\"domain\" = [\"selector:/path/to/key.pem\"]"}},

    Param{"dmarc.public_suffix_list", "The public suffix list that defines organizational domains.",
          StringParam{"/usr/share/publicsuffix/effective_tld_names.dat",
                      [](Config& c) -> std::string& { return c.dmarc.public_suffix_list; }}},
    Param{"dmarc.enforce_reject", "A DMARC fail under p=reject is refused (550 5.7.1) at end of DATA.",
          BoolParam{true, [](Config& c) -> bool& { return c.dmarc.enforce_reject; }}},
    Param{"dmarc.enforce_quarantine", "A DMARC fail under p=quarantine goes to Postfix's hold queue.",
          BoolParam{true, [](Config& c) -> bool& { return c.dmarc.enforce_quarantine; }}},
};

std::string absolute_base(const std::string& base, const std::string& base_dn) {
  if (base.empty()) return base_dn;
  if (base_dn.empty() || (base.size() >= base_dn.size() &&
                          iequals(std::string_view(base).substr(base.size() - base_dn.size()), base_dn))) {
    return base;
  }
  return base + "," + base_dn;
}

bool valid_domain_name(const std::string& d) {
  const auto parsed = parse_address("x@" + d);
  return parsed.address && d.front() != '[';
}

}  // namespace

std::vector<std::string> exec_argv(const Config& config, const ServiceSpec& spec) {
  if (spec.argument.empty()) return config.exec.command;
  std::vector<std::string> argv;
  std::size_t pos = 0;
  const std::string& a = spec.argument;
  while (pos < a.size()) {
    const auto start = a.find_first_not_of(" \t", pos);
    if (start == std::string::npos) break;
    const auto end = std::min(a.find_first_of(" \t", start), a.size());
    argv.push_back(a.substr(start, end - start));
    pos = end;
  }
  return argv;
}

ServiceSpec parse_service_spec(std::string_view value) {
  const auto colon = value.find(':');
  if (colon == std::string_view::npos) return {std::string(value), {}};
  return {std::string(value.substr(0, colon)), std::string(value.substr(colon + 1))};
}

std::span<const Param> params() {
  return kParams;
}

Config default_config() {
  Config c;
  for (const Param& p : kParams) {
    std::visit(
        [&c](const auto& k) {
          using K = std::decay_t<decltype(k)>;
          if constexpr (std::is_same_v<K, ListParam>) {
            k.field(c).assign(k.def.begin(), k.def.end());
          } else if constexpr (std::is_same_v<K, TableParam>) {
            k.field(c).clear();
          } else if constexpr (std::is_same_v<K, StringParam>) {
            k.field(c) = std::string(k.def);
          } else {
            k.field(c) = k.def;
          }
        },
        p.kind);
  }
  return c;
}

std::string Config::user_base_dn() const {
  return absolute_base(directory.user_base, directory.base_dn);
}
std::string Config::group_base_dn() const {
  return absolute_base(directory.group_base, directory.base_dn);
}

bool Config::is_hosted_domain(std::string_view domain) const {
  if (iequals(domain, domains.main)) return true;
  if (!domains.internal.empty() && iequals(domain, domains.internal)) return true;
  for (const auto& a : domains.aliases) {
    if (iequals(domain, a)) return true;
  }
  return false;
}

namespace {

// The checks of one autoreply profile; `at` is its section ("autoreply" or "autoreply.NAME").
template <typename Err>
void check_autoreply(const std::string& at, const Config::Autoreply& a, Err& err) {
  if (a.state_dir.empty() || a.state_dir.front() != '/')
    err(at + ".state_dir", "the state directory is an absolute path");
  if (a.sendmail.empty() || a.sendmail.front() != '/') err(at + ".sendmail", "sendmail is an absolute path");
  if (!a.sendmail_config.empty() && a.sendmail_config.front() != '/')
    err(at + ".sendmail_config", "the configuration directory is an absolute path");
  if (!a.command.empty() && !a.command.front().starts_with('/'))
    err(at + ".command", "the command is an absolute path");
  if (!a.from.empty() && !parse_address(a.from).address)
    err(at + ".from", "\"" + a.from + "\" is not an address");
  for (const char ch : a.subject) {
    if (static_cast<unsigned char>(ch) < 32 || ch == 127) {
      err(at + ".subject", "the subject has a control character");
      break;
    }
  }
}

}  // namespace

const Config::Autoreply* autoreply_profile(const Config& config, const ServiceSpec& spec) {
  if (spec.argument.empty()) return &config.autoreply;
  const auto it = config.autoreply_profiles.find(spec.argument);
  return it == config.autoreply_profiles.end() ? nullptr : &it->second;
}

std::vector<ConfigError> validate(const Config& c) {
  std::vector<ConfigError> errors;
  auto err = [&errors](std::string key, std::string msg) {
    errors.push_back({std::move(key), std::move(msg)});
  };

  std::set<std::string> seen;
  auto check_domain = [&](const std::string& key, const std::string& d) {
    if (d.empty() || !valid_domain_name(d)) {
      err(key, "\"" + d + "\" is not a domain name");
    } else if (!seen.insert(ascii_lower(d)).second) {
      err(key, "domain \"" + d + "\" is listed twice");
    }
  };
  check_domain("domains.main", c.domains.main);
  for (const auto& d : c.domains.aliases) check_domain("domains.aliases", d);
  if (!c.domains.internal.empty()) check_domain("domains.internal", c.domains.internal);
  for (const auto& [key, dp] : {std::pair{"routing.mailbox_domain", &c.routing.mailbox_domain},
                                std::pair{"routing.service_domain", &c.routing.service_domain}}) {
    const std::string& d = *dp;
    if (!valid_domain_name(d)) {
      err(key, "\"" + d + "\" is not a domain name");
    } else if (seen.count(ascii_lower(d)) != 0) {
      err(key, "\"" + d + "\" must not be a hosted domain: targets on it would be routed again");
    }
  }
  for (char ch : c.routing.recipient_delimiter) {
    if (ch == '@' || ch == '.' || ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) <= ' ')
      err("routing.recipient_delimiter", std::string("'") + ch + "' cannot be a recipient delimiter");
  }

  for (const auto& [key, values] : c.transport) {
    if (!parse_address(key).address) err("transport." + key, "\"" + key + "\" is not an address");
    if (values.size() != 1 || values.front().empty() || !is_dot_atom(values.front()))
      err("transport." + key, "a transport rule names exactly one service (a dot-atom)");
  }
  for (const auto& [key, targets] : c.aliases) {
    if (!is_dot_atom(key) && !parse_address(key).address)
      err("aliases." + key, "\"" + key + "\" is neither an address nor a local part");
    if (targets.empty()) err("aliases." + key, "an alias needs at least one target");
    for (const auto& t : targets) {
      if (!is_dot_atom(t) && !parse_address(t).address)
        err("aliases." + key, "target \"" + t + "\" is neither an address nor a local part");
    }
  }

  const auto& d = c.directory;
  if (d.uris.empty() && d.ldif_file.empty())
    err("directory.uris", "no directory: set directory.uris (LDAP) or directory.ldif_file");
  for (const auto& uri : d.uris) {
    if (uri.rfind("ldap://", 0) != 0 && uri.rfind("ldaps://", 0) != 0 && uri.rfind("ldapi://", 0) != 0)
      err("directory.uris", "\"" + uri + "\" is not an ldap://, ldaps:// or ldapi:// URI");
  }
  if (d.user_filter.find('%') == std::string::npos)
    err("directory.user_filter", "the user filter must use the address (%s, %u or %d)");
  if (d.group_filter.find("%u") == std::string::npos)
    err("directory.group_filter", "the group filter must use the name (%u)");
  for (const auto& [key, f] : {std::pair{"directory.user_filter", &d.user_filter},
                               std::pair{"directory.group_filter", &d.group_filter}}) {
    if (f->empty() || f->front() != '(' || f->back() != ')') err(key, "a filter is enclosed in parentheses");
  }

  const auto& m = c.milter;
  if (m.log != "syslog" && m.log != "stderr")
    err("milter.log", "\"" + m.log + "\" is neither syslog nor stderr");
  if (m.listen.rfind("unix:", 0) != 0 && m.listen.rfind("local:", 0) != 0 &&
      m.listen.rfind("inet:", 0) != 0 && m.listen.rfind("inet6:", 0) != 0)
    err("milter.listen", "\"" + m.listen + "\" is not unix:PATH, inet:PORT@HOST or inet6:PORT@HOST");
  for (const auto& net : m.trusted_networks) {
    if (!parse_cidr(net)) err("milter.trusted_networks", "\"" + net + "\" is not an address or CIDR network");
  }
  if (!m.authserv_id.empty() && !valid_domain_name(m.authserv_id))
    err("milter.authserv_id", "\"" + m.authserv_id + "\" is not a host name");
  const auto& a = c.auth;
  if (a.login_filter.empty() || a.login_filter.front() != '(' || a.login_filter.back() != ')')
    err("auth.login_filter", "a filter is enclosed in parentheses");
  if (a.login_filter.find("%u") == std::string::npos && a.login_filter.find("%s") == std::string::npos)
    err("auth.login_filter", "the login filter must use the login (%u or %s)");
  for (const auto& [key, v] : {std::pair{"auth.uid", &a.uid}, std::pair{"auth.gid", &a.gid}}) {
    if (v->empty()) err(key, "must name a system user or group, or a number");
  }
  if (a.home.empty() || a.home.front() != '/') err("auth.home", "the home template is an absolute path");
  if (c.lmtp.trace_header.empty() || !is_header_name(c.lmtp.trace_header))
    err("lmtp.trace_header", "\"" + c.lmtp.trace_header + "\" is not a header field name");
  for (const auto& [domain, keys] : c.dkim.signing) {
    if (!valid_domain_name(domain)) err("dkim.signing." + domain, "\"" + domain + "\" is not a domain name");
    for (const auto& k : keys) {
      const auto colon = k.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == k.size() ||
          !is_dot_atom(k.substr(0, colon)))
        err("dkim.signing." + domain, "\"" + k + "\" is not \"selector:/path/to/key.pem\"");
    }
  }

  for (const auto& [key, values] : c.services) {
    if (!is_dot_atom(key) && !parse_address(key).address)
      err("services." + key, "\"" + key + "\" is neither an address nor a local part");
    if (values.size() != 1) {
      err("services." + key, "a service entry is one \"kind\" or \"kind:argument\" string");
      continue;
    }
    const auto spec = parse_service_spec(values.front());
    if (spec.kind == kServiceDmarcReports) {
      if (!spec.argument.empty() && spec.argument.front() != '/')
        err("services." + key, "the Maildir of a dmarc-reports service is an absolute path");
    } else if (spec.kind == kServiceAutoreply) {
      if (autoreply_profile(c, spec) == nullptr)
        err("services." + key, "no autoreply profile [autoreply." + spec.argument + "]");
    } else if (spec.kind == kServiceExec) {
      const auto argv = exec_argv(c, spec);
      if (argv.empty() || !argv.front().starts_with('/'))
        err("services." + key,
            "an exec service needs a command with an absolute path (argument or exec.command)");
    } else {
      err("services." + key,
          "unknown service kind \"" + spec.kind + "\" (known: dmarc-reports, autoreply, exec)");
    }
  }
  check_autoreply("autoreply", c.autoreply, err);
  for (const auto& [name, profile] : c.autoreply_profiles) {
    if (!is_dot_atom(name) || name.find('.') != std::string::npos)
      err("autoreply." + name, "a profile name is letters, digits and -_ only");
    check_autoreply("autoreply." + name, profile, err);
  }
  if (c.service_mail.log != "syslog" && c.service_mail.log != "stderr")
    err("service_mail.log", "\"" + c.service_mail.log + "\" is neither syslog nor stderr");
  const auto& r = c.dmarc_reports;
  if (r.maildir.empty() || r.maildir.front() != '/')
    err("dmarc_reports.maildir", "the Maildir is an absolute path");
  std::set<std::string> folders;
  for (const auto& [key, f] : {std::pair{"dmarc_reports.folder_new", &r.folder_new},
                               std::pair{"dmarc_reports.folder_invalid", &r.folder_invalid},
                               std::pair{"dmarc_reports.folder_failures", &r.folder_failures}}) {
    if (is_inbox_folder(*f) || !valid_maildir_folder(*f)) {
      err(key, "\"" + *f + "\" is not a Maildir++ folder name (dot-separated parts, no '/', not INBOX)");
    } else if (!folders.insert(*f).second) {
      err(key, "folder \"" + *f + "\" is used twice");
    }
  }
  return errors;
}

}  // namespace chainmail
