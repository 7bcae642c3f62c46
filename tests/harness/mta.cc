// mta.cc: see mta.h.
#include "harness/mta.h"

#include <cctype>
#include <map>
#include <memory>
#include <stdexcept>
#include <utility>
#include <variant>

#include "harness/files.h"
#include "harness/net.h"
#include "harness/paths.h"

namespace chainmail::harness {
namespace {

constexpr const char* kMasterDaemon = "/usr/lib/postfix/sbin/master";

// Just enough JSON for `postqueue -j` (one object per line; strings, numbers, booleans, arrays, objects).
struct Json;
using JsonObject = std::map<std::string, Json, std::less<>>;
using JsonArray = std::vector<Json>;
struct Json {
  std::variant<std::nullptr_t, bool, double, std::string, std::shared_ptr<JsonArray>,
               std::shared_ptr<JsonObject>>
      value;

  const Json* get(std::string_view key) const {
    const auto* object = std::get_if<std::shared_ptr<JsonObject>>(&value);
    if (object == nullptr) return nullptr;
    const auto it = (*object)->find(key);
    return it == (*object)->end() ? nullptr : &it->second;
  }
  std::string string_or(std::string_view key) const {
    const Json* v = get(key);
    const auto* s = v == nullptr ? nullptr : std::get_if<std::string>(&v->value);
    return s == nullptr ? std::string() : *s;
  }
  const JsonArray* array(std::string_view key) const {
    const Json* v = get(key);
    const auto* a = v == nullptr ? nullptr : std::get_if<std::shared_ptr<JsonArray>>(&v->value);
    return a == nullptr ? nullptr : a->get();
  }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  Json parse() {
    Json v = value();
    skip_space();
    if (pos_ != text_.size()) fail("trailing text");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("postqueue -j: bad JSON (" + what + ") at offset " + std::to_string(pos_) +
                             ": " + std::string(text_));
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])) != 0) ++pos_;
  }
  char next() {
    if (pos_ >= text_.size()) fail("unexpected end");
    return text_[pos_++];
  }
  void expect(char c) {
    skip_space();
    if (next() != c) fail(std::string("expected ") + c);
  }
  bool consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Json value() {
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end");
    const char c = text_[pos_];
    if (c == '{') return object();
    if (c == '[') return array();
    if (c == '"') return Json{string()};
    if (consume("true")) return Json{true};
    if (consume("false")) return Json{false};
    if (consume("null")) return Json{nullptr};
    return number();
  }

  Json object() {
    auto out = std::make_shared<JsonObject>();
    expect('{');
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return Json{out};
    }
    while (true) {
      skip_space();
      std::string key = string();
      expect(':');
      (*out)[std::move(key)] = value();
      skip_space();
      const char c = next();
      if (c == '}') return Json{out};
      if (c != ',') fail("expected , or }");
    }
  }

  Json array() {
    auto out = std::make_shared<JsonArray>();
    expect('[');
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return Json{out};
    }
    while (true) {
      out->push_back(value());
      skip_space();
      const char c = next();
      if (c == ']') return Json{out};
      if (c != ',') fail("expected , or ]");
    }
  }

  std::string string() {
    if (next() != '"') fail("expected string");
    std::string out;
    while (true) {
      const char c = next();
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = next();
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          // Postfix escapes only control characters this way; keep anything else visible but harmless.
          const std::string_view hex = text_.substr(pos_, 4);
          if (hex.size() != 4) fail("short \\u escape");
          pos_ += 4;
          const unsigned long code = std::stoul(std::string(hex), nullptr, 16);
          out += code < 0x80 ? static_cast<char>(code) : '?';
          break;
        }
        default:
          out += e;  // \" \\ \/
      }
    }
  }

  Json number() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() &&
           std::string_view("+-0123456789.eE").find(text_[pos_]) != std::string_view::npos) {
      ++pos_;
    }
    if (start == pos_) fail("unexpected character");
    return Json{std::stod(std::string(text_.substr(start, pos_ - start)))};
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

}  // namespace

Mta::Mta()
    : dir_("mta"),
      config_dir_(dir_.path() / "config"),
      queue_dir_(dir_.path() / "queue"),
      maillog_path_(dir_.path() / "maillog") {
  // The daemons drop to user postfix, and the lmtp/smtp clients reach sockets by absolute path: they must be
  // able to traverse the TempDir (0700 from mkdtemp).
  std::filesystem::permissions(dir_.path(), std::filesystem::perms::owner_all |
                                                std::filesystem::perms::group_exec |
                                                std::filesystem::perms::others_exec);
  std::filesystem::create_directory(config_dir_);
  std::filesystem::create_directory(queue_dir_);
}

std::map<std::string, std::string, std::less<>> Mta::template_values(const MtaOptions& options) const {
  std::string relayhost = options.relayhost;
  if (relayhost.empty()) relayhost = "[127.0.0.1]:" + std::to_string(free_port());
  return {
      {"QUEUE_DIR", queue_dir_.string()},
      {"DATA_DIR", (dir_.path() / "data").string()},
      {"MAILLOG_FILE", maillog_path_.string()},
      {"MYHOSTNAME", options.myhostname},
      {"MAIN_DOMAIN", options.main_domain},
      {"HOSTED_DOMAINS", join(options.hosted_domains, ", ")},
      {"MAILBOX_DOMAIN", options.mailbox_domain},
      {"SERVICE_DOMAIN", options.service_domain},
      {"LMTP_SOCKET", options.lmtp_socket.string()},
      {"MILTER", options.milter},
      {"SOCKETMAP", options.socketmap},
      {"RELAYHOST", relayhost},
      {"SMTPD_LISTEN", smtp_server()},
      {"SUBMISSION_LISTEN", submission_server()},
      {"SUBMISSIONS_LISTEN", submissions_server()},
      {"TLS_CERT_FILE", options.submission ? options.submission->cert_file.string() : std::string()},
      {"TLS_KEY_FILE", options.submission ? options.submission->key_file.string() : std::string()},
      // Postfix refuses an empty smtpd_sasl_path even with AUTH off; "smtpd" is its default.
      {"SASL_PATH", options.submission ? options.submission->sasl_path : std::string("smtpd")},
      {"SERVICE_USER", options.service_user},
      {"SERVICE_MAIL", options.service_mail},
      {"CHAINMAIL_CONF", options.chainmail_conf.string()},
  };
}

void Mta::configure(const MtaOptions& options) {
  const std::filesystem::path conf_dir =
      options.conf_dir.empty() ? source_dir() / "conf" / "postfix" : options.conf_dir;
  const auto values = template_values(options);
  std::string main_cf = fill_template(read_file(conf_dir / "main.cf.in"), values);
  if (options.socketmap.empty()) {
    // "socketmap::route" is not a table; with no socketmap there is no alias table at all.
    main_cf += "\n# harness: no socketmap\nvirtual_alias_maps =\nsmtpd_sender_login_maps =\n";
  }
  write_file(config_dir_ / "main.cf", main_cf);
  write_file(config_dir_ / "master.cf", fill_template(read_file(conf_dir / "master.cf.in"), values));

  // Test speed: retries within a second, no error back-off. maillog_file_prefixes must admit our log's
  // folder.
  std::map<std::string, std::string> settings = {
      {"maillog_file_prefixes", dir_.path().string()},
      {"queue_run_delay", "1s"},
      {"minimal_backoff_time", "1s"},
      {"maximal_backoff_time", "2s"},
      {"smtpd_error_sleep_time", "0"},
      {"in_flow_delay", "0"},
      {"smtp_connect_timeout", "2s"},
      {"inet_protocols", "ipv4"},
  };
  // Without a certificate nothing offers TLS (an empty smtpd_tls_cert_file with "may" logs a warning per
  // connection).
  if (!options.submission) settings["smtpd_tls_security_level"] = "none";
  for (const auto& [name, value] : options.main_cf) settings[name] = value;
  std::vector<std::string> argv = {"postconf", "-c", config_dir_.string(), "-e"};
  for (const auto& [name, value] : settings) argv.push_back(name + "=" + value);
  RunResult r = run(argv);
  if (r.exit_code != 0 || !r.err.empty()) {
    throw std::runtime_error("postconf -e failed (exit " + std::to_string(r.exit_code) + "): " + r.err);
  }
  std::vector<std::string> master_cf;
  if (!options.submission) {
    // The milter suites submit from loopback without TLS or AUTH (they have no Dovecot): the submission
    // listener as it was before conf/postfix required both. The implicit-TLS listener has no certificate.
    const std::string sub = submission_server() + "/inet/";
    for (const char* o : {"smtpd_tls_security_level=none", "smtpd_sasl_auth_enable=no",
                          "smtpd_client_restrictions=permit_mynetworks,reject", "smtpd_sender_restrictions=",
                          "smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination"})
      master_cf.push_back(sub + o);
    r = run({"postconf", "-c", config_dir_.string(), "-M#", submissions_server() + "/inet"});
    if (r.exit_code != 0 || !r.err.empty()) {
      throw std::runtime_error("postconf -M# failed (exit " + std::to_string(r.exit_code) + "): " + r.err);
    }
  }
  for (std::string setting : options.master_cf) {
    for (const auto& [alias, listen] : {std::pair{"@SMTPD@", smtp_server()},
                                        {"@SUBMISSIONS@", submissions_server()},
                                        {"@SUBMISSION@", submission_server()}}) {
      if (setting.starts_with(alias)) setting.replace(0, std::string_view(alias).size(), listen);
    }
    master_cf.push_back(setting);
  }
  if (!master_cf.empty()) {
    argv = {"postconf", "-c", config_dir_.string(), "-P"};
    argv.insert(argv.end(), master_cf.begin(), master_cf.end());
    r = run(argv);
    if (r.exit_code != 0 || !r.err.empty()) {
      throw std::runtime_error("postconf -P failed (exit " + std::to_string(r.exit_code) + "): " + r.err);
    }
  }
  // Postfix (util/load_file.c) re-reads a file changed within the last second, sleeping in between: ~2 s
  // for every tool and daemon that starts on a freshly written configuration. Nobody else writes these.
  const auto past = std::filesystem::file_time_type::clock::now() - std::chrono::minutes(1);
  std::filesystem::last_write_time(config_dir_ / "main.cf", past);
  std::filesystem::last_write_time(config_dir_ / "master.cf", past);
}

void Mta::start(const MtaOptions& options) {
  stop();
  smtp_port_ = free_port();
  do {
    submission_port_ = free_port();
  } while (submission_port_ == smtp_port_);
  do {
    submissions_port_ = free_port();
  } while (submissions_port_ == smtp_port_ || submissions_port_ == submission_port_);
  submissions_enabled_ = options.submission.has_value();
  configure(options);

  // postfix check creates the queue's subfolders with their owners and modes (postfix-script check-fatal);
  // the master refuses to start without them.
  const RunResult check = run({"postfix", "-c", config_dir_.string(), "check"});
  if (check.exit_code != 0) {
    throw std::runtime_error("postfix -c " + config_dir_.string() + " check failed:\n" + check.out +
                             check.err);
  }
  process_ = Process({kMasterDaemon, "-c", config_dir_.string(), "-s"}, dir_.path() / "master.out");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!wait_for_port(smtp_port_, std::chrono::milliseconds(50)) ||
         !wait_for_port(submission_port_, std::chrono::milliseconds(50)) ||
         (submissions_enabled_ && !wait_for_port(submissions_port_, std::chrono::milliseconds(50)))) {
    if (!process_.running()) {
      throw std::runtime_error(
          "postfix master exited at startup (exit " + std::to_string(process_.terminate()) + "):\n" +
          log_tail(dir_.path() / "master.out") + "\nmail log:\n" + log_tail(maillog_path_));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      process_.terminate();
      throw std::runtime_error("postfix did not listen on " + smtp_server() + " and " + submission_server() +
                               "; mail log:\n" + log_tail(maillog_path_));
    }
  }
}

void Mta::stop() {
  process_.terminate();
}

std::string Mta::smtp_server() const {
  return "127.0.0.1:" + std::to_string(smtp_port_);
}

std::string Mta::submission_server() const {
  return "127.0.0.1:" + std::to_string(submission_port_);
}

std::string Mta::submissions_server() const {
  return "127.0.0.1:" + std::to_string(submissions_port_);
}

std::string Mta::maillog() const {
  try {
    return read_file(maillog_path_);
  } catch (const std::runtime_error&) {
    return {};  // postlogd creates it with the first line.
  }
}

bool Mta::wait_for_log(std::string_view needle, std::chrono::milliseconds timeout) const {
  return wait_for_text(maillog_path_, needle, timeout);
}

RunResult Mta::postqueue(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"postqueue", "-c", config_dir_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

RunResult Mta::postsuper(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"postsuper", "-c", config_dir_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

RunResult Mta::postcat(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"postcat", "-c", config_dir_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

RunResult Mta::postconf(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"postconf", "-c", config_dir_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

RunResult Mta::sendmail(const std::vector<std::string>& args, std::string_view message) const {
  std::vector<std::string> argv = {"sendmail", "-C", config_dir_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, message);
}

std::vector<QueuedMessage> Mta::queue() const {
  const RunResult r = postqueue({"-j"});
  if (r.exit_code != 0) {
    throw std::runtime_error("postqueue -j failed (exit " + std::to_string(r.exit_code) + "): " + r.err);
  }
  std::vector<QueuedMessage> out;
  std::size_t pos = 0;
  while (pos < r.out.size()) {
    std::size_t end = r.out.find('\n', pos);
    if (end == std::string::npos) end = r.out.size();
    const std::string_view line = std::string_view(r.out).substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    const Json entry = JsonParser(line).parse();
    QueuedMessage message{
        entry.string_or("queue_name"), entry.string_or("queue_id"), entry.string_or("sender"), {}, {}};
    if (const JsonArray* recipients = entry.array("recipients"); recipients != nullptr) {
      for (const Json& rcpt : *recipients) {
        message.recipients.push_back(rcpt.string_or("address"));
        message.delay_reasons.push_back(rcpt.string_or("delay_reason"));
      }
    }
    out.push_back(std::move(message));
  }
  return out;
}

std::optional<QueuedMessage> Mta::queued(std::string_view queue_id) const {
  for (auto& message : queue()) {
    if (message.queue_id == queue_id) return std::move(message);
  }
  return std::nullopt;
}

std::string Mta::queued_message(std::string_view queue_id) const {
  const RunResult r = postcat({"-h", "-b", "-q", std::string(queue_id)});
  return r.exit_code == 0 ? r.out : std::string();
}

std::string Mta::queued_envelope(std::string_view queue_id) const {
  const RunResult r = postcat({"-e", "-q", std::string(queue_id)});
  return r.exit_code == 0 ? r.out : std::string();
}

void Mta::flush() const {
  const RunResult r = postqueue({"-f"});
  if (r.exit_code != 0) throw std::runtime_error("postqueue -f failed: " + r.err);
}

}  // namespace chainmail::harness
