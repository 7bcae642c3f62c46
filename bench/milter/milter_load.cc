// milter_load.cc - the milter benchmark's load driver: the MTA side of the Sendmail milter protocol, version
// 6, spoken as Postfix 3.7 speaks it (src/milter/milter8.c), replaying a corpus through one milter or a
// chain.
//
//   milter_load --corpus corpus.txt --milter unix:/path/sock|inet:127.0.0.1:PORT [--milter ...]
//               [--connections N] [--seconds S | --passes P] [--warmup-seconds W]
//               [--daemon NAME=PID]... [--observe NAME=PID]... [--results FILE.jsonl]
//
// Corpus (bench/milter/gen_corpus.py): "session CLIENT_ADDR CLIENT_NAME HELO", then per message
// "message ID MAIL_FROM FILE" and its "rcpt ADDRESS" lines. FILE is the message as received (CRLF).
//
// What Postfix does and this driver mimics (the peers' costs depend on it):
// - One milter connection per SMTP session and milter (libmilter closes it at QUIT: milter8.c defines
//   LIBMILTER_AUTO_DISCONNECT): connect, SMFIC_OPTNEG offering version 6, actions ADDHDRS|CHGBODY|ADDRCPT|
//   DELRCPT|CHGHDRS|QUARANTINE|CHGFROM|ADDRCPT_PAR|SETSYMLIST and the full version-6 event mask, CONNECT,
//   HELO, then per message MAIL, RCPT..., DATA, HEADER..., EOH, BODY chunks of at most 65535 bytes, EOM, and
//   SMFIC_ABORT after the transaction (smtpd's mail_reset); SMFIC_QUIT and close at the end of the session.
//   Events the milter negotiated away are skipped, their macros still sent; no reply is awaited where the
//   milter negotiated SMFIP_NR_*. Headers go without Postfix's own Received: header, one leading space eaten
//   unless SMFIP_HDR_LEADSPC, continuation lines joined by "\n"; the body with CRLF line ends.
// - Macros (SMFIC_MACRO) before each event, Postfix's defaults that have a value here: connect j,
//   {daemon_name}, {daemon_addr}, v, _; mail {mail_addr}; rcpt {rcpt_addr}, {rcpt_host}, {rcpt_mailer}; from
//   DATA on i (the queue id: smtpd_delay_open_until_valid_rcpt opens the queue file after the first RCPT).
// - A chain (smtpd_milters = a, b): envelope events go to each milter in turn (a reject stops the event);
//   the content goes to the first milter completely, its header edits are applied, then to the next, which
//   sees them (cleanup(8) re-reads the queue file per milter). That is how OpenDMARC reads OpenDKIM's
//   verdict.
// - Socket options: NONE set. Postfix does not set TCP_NODELAY on milter sockets; over TCP it only grows its
//   VSTREAM buffer to 4 x TCP_MAXSEG (vstream_tweak_tcp). Writes are buffered (4096 bytes over unix sockets,
//   as VSTREAM_BUFSIZE) and flushed when the buffer is full or before reading a reply, so macros, an event
//   and any unanswered events before it (ABORT, headers under SMFIP_NR_HDR) leave in one write. A milter that
//   answers at end of message with several small writes meets Nagle's algorithm and our delayed ACK over TCP,
//   exactly as it does behind Postfix.
//
// Measured (stdout, "key value" lines): messages, sessions, seconds, msgs_per_s, latency p50/p90/p99/max in
// ms (a message's latency runs from its MAIL event, or from the connect for a session's first message, to its
// last reply), errors, dispositions, and per --daemon the CPU time (utime+stime of the process and its
// descendants, /proc/PID/stat, before/after the timed phase) and memory: VmHWM summed and of the largest
// process, and the current Pss summed (shared pages of forked workers counted once). --observe measures the
// CPU of a helper (the DNS server) apart from the total; driver_cpu_ms_per_msg is this process's. --results
// writes one JSON line per message of the first pass (disposition, reply code, added headers, recipient
// edits), for the verdict check. Progress and protocol errors go to stderr.
//
// DIAGNOSTICS: exit 0 when it measured; 2 for bad arguments or an unreadable corpus; 3 when no message went
// through at all (every session failed: the milter is down or speaks another protocol). Slowness never fails
// it. SECURITY: a benchmark tool for loopback daemons it started; replies are bounded (64 MiB per packet).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/unique_fd.h"

namespace {

using Clock = std::chrono::steady_clock;
using chainmail::UniqueFd;

// ------------------------------------------------------------------ protocol constants (milter8.c names)
constexpr std::uint32_t kVersion = 6;
constexpr std::uint32_t kActions = 0x1FF;  // SMFIF_ADDHDRS .. SMFIF_SETSYMLIST, as milter8_connect offers
// SMFIP_*: what milter8.c's MILTER8_V6_PROTO_MASK offers.
constexpr std::uint32_t kNoConnect = 1U << 0;
constexpr std::uint32_t kNoHelo = 1U << 1;
constexpr std::uint32_t kNoMail = 1U << 2;
constexpr std::uint32_t kNoRcpt = 1U << 3;
constexpr std::uint32_t kNoBody = 1U << 4;
constexpr std::uint32_t kNoHdrs = 1U << 5;
constexpr std::uint32_t kNoEoh = 1U << 6;
constexpr std::uint32_t kNrHdr = 1U << 7;
constexpr std::uint32_t kNoUnknown = 1U << 8;
constexpr std::uint32_t kNoData = 1U << 9;
constexpr std::uint32_t kSkip = 1U << 10;
constexpr std::uint32_t kRcptRej = 1U << 11;
constexpr std::uint32_t kNrConn = 1U << 12;
constexpr std::uint32_t kNrHelo = 1U << 13;
constexpr std::uint32_t kNrMail = 1U << 14;
constexpr std::uint32_t kNrRcpt = 1U << 15;
constexpr std::uint32_t kNrData = 1U << 16;
constexpr std::uint32_t kNrUnkn = 1U << 17;
constexpr std::uint32_t kNrEoh = 1U << 18;
constexpr std::uint32_t kNrBody = 1U << 19;
constexpr std::uint32_t kHdrLeadSpc = 1U << 20;
constexpr std::uint32_t kEvents = kNoConnect | kNoHelo | kNoMail | kNoRcpt | kNoBody | kNoHdrs | kNoEoh |
                                  kNrHdr | kNoUnknown | kNoData | kSkip | kRcptRej | kNrConn | kNrHelo |
                                  kNrMail | kNrRcpt | kNrData | kNrUnkn | kNrEoh | kNrBody | kHdrLeadSpc;

constexpr std::size_t kChunk = 65535;      // MILTER_CHUNK_SIZE
constexpr std::size_t kVstreamBuf = 4096;  // VSTREAM_BUFSIZE
constexpr std::uint32_t kMaxPacket = 64U << 20;
constexpr int kReplyTimeoutMs = 300'000;  // milter_content_timeout

// ------------------------------------------------------------------ corpus
struct Message {
  std::string id;
  std::string mail_from;
  std::vector<std::string> rcpts;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value as Postfix holds it
  std::string body;                                          // CRLF line ends
  std::size_t size = 0;
};

struct Session {
  std::string client_addr;
  std::string client_name;
  std::string helo;
  std::vector<Message> messages;
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Splits a message as received into header fields (continuations joined by "\n", as Postfix keeps them) and
// body.
void parse_message(const std::string& raw, Message& m) {
  m.size = raw.size();
  std::size_t pos = 0;
  while (pos < raw.size()) {
    std::size_t eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) eol = raw.size();
    if (eol == pos) {  // the empty line: the body follows
      pos = std::min(raw.size(), eol + 2);
      break;
    }
    const std::string_view line(raw.data() + pos, eol - pos);
    if ((line.front() == ' ' || line.front() == '\t') && !m.headers.empty()) {
      m.headers.back().second.append("\n").append(line);
    } else {
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) throw std::runtime_error("malformed header in message " + m.id);
      std::string name(line.substr(0, colon));
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
      m.headers.emplace_back(std::move(name), std::string(line.substr(colon + 1)));
    }
    pos = eol + 2;
  }
  m.body = pos < raw.size() ? raw.substr(pos) : std::string();
  // Postfix stores records and sends each with CRLF: a body always ends with one.
  if (!m.body.empty() && !m.body.ends_with("\r\n")) m.body += "\r\n";
}

std::vector<Session> read_corpus(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  const std::filesystem::path dir = path.parent_path();
  std::vector<Session> sessions;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string kind;
    f >> kind;
    if (kind == "session") {
      Session s;
      f >> s.client_addr >> s.client_name >> s.helo;
      sessions.push_back(std::move(s));
    } else if (kind == "message" && !sessions.empty()) {
      Message m;
      std::string file;
      f >> m.id >> m.mail_from >> file;
      if (m.mail_from == "<>") m.mail_from.clear();
      parse_message(read_file(dir / file), m);
      sessions.back().messages.push_back(std::move(m));
    } else if (kind == "rcpt" && !sessions.empty() && !sessions.back().messages.empty()) {
      std::string rcpt;
      f >> rcpt;
      sessions.back().messages.back().rcpts.push_back(std::move(rcpt));
    } else if (!kind.empty() && kind[0] != '#') {
      throw std::runtime_error("bad corpus line: " + line);
    }
  }
  return sessions;
}

// ------------------------------------------------------------------ one milter connection
struct ProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Replies, in milter8.c's names.
enum class Verdict { kContinue, kAccept, kReject, kTempfail, kDiscard, kConnFail, kShutdown, kSkipRest };

struct Reply {
  Verdict verdict = Verdict::kContinue;
  std::string code;  // SMFIR_REPLYCODE text, if any
};

// What a message's end-of-message replies asked for (the chain applies the header edits for the next milter).
struct Edits {
  std::vector<std::string> added_headers;  // "Name: value", in the order received (insert, add, change)
  std::vector<std::string> rcpt_added;
  std::vector<std::string> rcpt_deleted;
  std::string quarantine;
  std::string new_from;
  bool body_replaced = false;
};

class MilterConn {
 public:
  MilterConn(const std::string& spec, std::string_view name) : name_(name) { open(spec); }

  void negotiate() {
    std::string d;
    put32(d, kVersion);
    put32(d, kActions);
    put32(d, kEvents);
    command('O', d);
    char cmd = 0;
    std::string data;
    read_packet(cmd, data);
    if (cmd != 'O' || data.size() < 12) throw ProtocolError(name_ + ": bad OPTNEG reply");
    version_ = get32(data, 0);
    actions_ = get32(data, 4);
    events_ = get32(data, 8);
    if (version_ > kVersion || (actions_ & kActions) != actions_)
      throw ProtocolError(name_ + ": milter wants what Postfix does not offer");
    // A SMFIF_SETSYMLIST override of the macro lists (data past 12 bytes) is accepted and ignored: the
    // macros sent are Postfix's defaults either way.
  }

  std::uint32_t events() const { return events_; }
  const std::string& name() const { return name_; }

  // Sends SMFIC_MACRO for `event`, then the event itself unless `skip_flag` was negotiated away, then reads
  // the reply unless `no_reply_flag` was negotiated. Returns Continue for skipped or unanswered events.
  Reply event(char event, const std::vector<std::pair<std::string, std::string>>& macros,
              std::uint32_t skip_flag, std::uint32_t no_reply_flag, const std::string& data,
              Edits* edits = nullptr) {
    std::string m(1, event);
    for (const auto& [k, v] : macros) {
      m.append(k).push_back('\0');
      m.append(v).push_back('\0');
    }
    command('D', m);
    if (skip_flag != 0 && (events_ & skip_flag) != 0) return {};
    command(event, data);
    if (no_reply_flag != 0 && (events_ & no_reply_flag) != 0) return {};
    return read_reply(edits);
  }

  // Commands without a reply: they leave with the next flush.
  void abort_message() { command('A', {}); }
  void quit() {
    command('Q', {});
    flush();
  }

 private:
  void open(const std::string& spec) {
    if (spec.rfind("unix:", 0) == 0) {
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      const std::string path = spec.substr(5);
      if (path.size() >= sizeof(sa.sun_path)) throw ProtocolError("socket path too long: " + path);
      std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
      fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!fd_.valid() || ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
        throw ProtocolError("connect " + spec + ": " + std::strerror(errno));
      bufsize_ = kVstreamBuf;
    } else if (spec.rfind("inet:", 0) == 0) {
      // Postfix syntax inet:HOST:PORT.
      const std::string rest = spec.substr(5);
      const std::size_t colon = rest.rfind(':');
      if (colon == std::string::npos) throw ProtocolError("bad inet spec " + spec);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      std::uint16_t port = 0;
      const std::string port_text = rest.substr(colon + 1);
      const auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
      if (r.ec != std::errc() || ::inet_pton(AF_INET, rest.substr(0, colon).c_str(), &sa.sin_addr) != 1)
        throw ProtocolError("bad inet spec " + spec);
      sa.sin_port = htons(port);
      fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!fd_.valid() || ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
        throw ProtocolError("connect " + spec + ": " + std::strerror(errno));
      // vstream_tweak_tcp: no TCP_NODELAY; a buffer of 4 x MSS when the MSS is large (loopback: 64 KB).
      int mss = 0;
      socklen_t len = sizeof(mss);
      bufsize_ = kVstreamBuf;
      if (::getsockopt(fd_.get(), IPPROTO_TCP, TCP_MAXSEG, &mss, &len) == 0 &&
          static_cast<std::size_t>(mss) > kVstreamBuf / 4)
        bufsize_ = static_cast<std::size_t>(mss) * 4;
    } else {
      throw ProtocolError("milter spec must be unix:PATH or inet:HOST:PORT: " + spec);
    }
    out_.reserve(bufsize_);
    in_.resize(bufsize_);
  }

  static void put32(std::string& s, std::uint32_t v) {
    const std::uint32_t n = htonl(v);
    s.append(reinterpret_cast<const char*>(&n), 4);
  }
  static std::uint32_t get32(const std::string& s, std::size_t at) {
    std::uint32_t n = 0;
    std::memcpy(&n, s.data() + at, 4);
    return ntohl(n);
  }

  // vstream_fwrite: fill the buffer, write it out whenever it is full.
  void append(std::string_view bytes) {
    while (!bytes.empty()) {
      const std::size_t n = std::min(bytes.size(), bufsize_ - out_.size());
      out_.append(bytes.substr(0, n));
      bytes.remove_prefix(n);
      if (out_.size() == bufsize_) flush();
    }
  }
  void command(char cmd, std::string_view data) {
    std::string head;
    put32(head, static_cast<std::uint32_t>(data.size() + 1));
    head.push_back(cmd);
    append(head);
    append(data);
  }
  void flush() {
    std::size_t done = 0;
    while (done < out_.size()) {
      const ssize_t n = ::send(fd_.get(), out_.data() + done, out_.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw ProtocolError(name_ + ": write: " + std::strerror(errno));
      done += static_cast<std::size_t>(n);
    }
    out_.clear();
  }
  // Buffered reads, as VSTREAM does (one read(2) may bring several replies).
  void read_exact(char* dst, std::size_t n) {
    while (n > 0) {
      if (in_pos_ == in_len_) {
        pollfd p{fd_.get(), POLLIN, 0};
        const int r = ::poll(&p, 1, kReplyTimeoutMs);
        if (r == 0) throw ProtocolError(name_ + ": timeout waiting for a reply");
        if (r < 0 && errno == EINTR) continue;
        const ssize_t got = ::read(fd_.get(), in_.data(), in_.size());
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) throw ProtocolError(name_ + (got == 0 ? ": connection closed" : ": read error"));
        in_pos_ = 0;
        in_len_ = static_cast<std::size_t>(got);
      }
      const std::size_t take = std::min(n, in_len_ - in_pos_);
      std::memcpy(dst, in_.data() + in_pos_, take);
      in_pos_ += take;
      dst += take;
      n -= take;
    }
  }
  void read_packet(char& cmd, std::string& data) {
    flush();
    std::uint32_t len = 0;
    read_exact(reinterpret_cast<char*>(&len), 4);
    len = ntohl(len);
    if (len == 0 || len > kMaxPacket) throw ProtocolError(name_ + ": bad reply length");
    read_exact(&cmd, 1);
    data.resize(len - 1);
    if (len > 1) read_exact(data.data(), len - 1);
  }

  // Reads replies until a final one; end-of-message edit requests are collected into `edits`.
  Reply read_reply(Edits* edits) {
    for (;;) {
      char cmd = 0;
      std::string d;
      read_packet(cmd, d);
      auto str = [&d](std::size_t at) -> std::pair<std::string, std::size_t> {
        if (at > d.size()) return {{}, d.size()};
        const std::size_t end = d.find('\0', at);
        if (end == std::string::npos) return {d.substr(at), d.size()};
        return {d.substr(at, end - at), end + 1};
      };
      switch (cmd) {
        case 'c':
          return {Verdict::kContinue, {}};
        case 'a':
          return {Verdict::kAccept, {}};
        case 'r':
          return {Verdict::kReject, "550 5.7.1 Command rejected"};
        case 't':
          return {Verdict::kTempfail, "451 4.7.1 Service unavailable - try again later"};
        case 'd':
          return {Verdict::kDiscard, {}};
        case 'f':
          return {Verdict::kConnFail, {}};
        case '4':
          return {Verdict::kShutdown, "421 4.7.0 Server closing connection"};
        case 's':
          return {Verdict::kSkipRest, {}};
        case 'y': {
          std::string text = str(0).first;
          return {text.starts_with('4') ? Verdict::kTempfail : Verdict::kReject, std::move(text)};
        }
        case 'p':  // SMFIR_PROGRESS: keep waiting
          continue;
        case 'h':
        case 'i':
        case 'm':
        case '+':
        case '2':
        case '-':
        case 'q':
        case 'e':
        case 'b':
          if (edits == nullptr) throw ProtocolError(name_ + ": edit request outside end of message");
          record_edit(cmd, d, *edits, str);
          continue;
        default:
          throw ProtocolError(name_ + ": unknown reply '" + std::string(1, cmd) + "'");
      }
    }
  }

  template <typename Str>
  void record_edit(char cmd, const std::string& d, Edits& e, const Str& str) {
    switch (cmd) {
      case 'h': {  // SMFIR_ADDHEADER name, value
        auto [n, at] = str(0);
        e.added_headers.push_back("add " + n + ":" + str(at).first);
        pending_.push_back({'h', 0, n, str(at).first});
        break;
      }
      case 'i':    // SMFIR_INSHEADER index, name, value
      case 'm': {  // SMFIR_CHGHEADER index, name, value (empty value: delete)
        if (d.size() < 4) throw ProtocolError(name_ + ": short header edit");
        const std::uint32_t index = get32(d, 0);
        auto [n, at] = str(4);
        std::string v = str(at).first;
        e.added_headers.push_back(std::string(cmd == 'i' ? "insert " : "change ") + n + ":" + v);
        pending_.push_back({cmd, index, std::move(n), std::move(v)});
        break;
      }
      case '+':
      case '2':
        e.rcpt_added.push_back(str(0).first);
        break;
      case '-':
        e.rcpt_deleted.push_back(str(0).first);
        break;
      case 'q':
        e.quarantine = str(0).first.empty() ? "(no reason)" : str(0).first;
        break;
      case 'e':
        e.new_from = str(0).first;
        break;
      case 'b':
        e.body_replaced = true;
        break;
      default:
        break;
    }
  }

 public:
  struct HeaderEdit {
    char kind;
    std::uint32_t index;
    std::string name;
    std::string value;
  };
  // Header edits of the last end of message, for the chain to apply before the next milter.
  std::vector<HeaderEdit> take_header_edits() { return std::exchange(pending_, {}); }

 private:
  std::string name_;
  UniqueFd fd_;
  std::size_t bufsize_ = kVstreamBuf;
  std::string out_;
  std::vector<char> in_;
  std::size_t in_pos_ = 0;
  std::size_t in_len_ = 0;
  std::uint32_t version_ = 0;
  std::uint32_t actions_ = 0;
  std::uint32_t events_ = 0;
  std::vector<HeaderEdit> pending_;
};

// Applies header edits as cleanup(8) does. Inserts count Postfix's own (hidden) Received: header as index 0;
// changes count occurrences of the name, 1-based, in the message as received.
void apply_header_edits(std::vector<std::pair<std::string, std::string>>& headers,
                        const std::vector<MilterConn::HeaderEdit>& edits) {
  auto iequal = [](std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](char x, char y) { return std::tolower(x) == std::tolower(y); });
  };
  for (const auto& e : edits) {
    if (e.kind == 'h') {
      headers.emplace_back(e.name, e.value);
    } else if (e.kind == 'i') {
      const std::size_t at = std::min<std::size_t>(e.index == 0 ? 0 : e.index - 1, headers.size());
      headers.insert(headers.begin() + static_cast<std::ptrdiff_t>(at), {e.name, e.value});
    } else if (e.kind == 'm') {
      std::uint32_t seen = 0;
      const std::uint32_t want = e.index == 0 ? 1 : e.index;
      for (auto it = headers.begin(); it != headers.end(); ++it) {
        if (!iequal(it->first, e.name) || ++seen != want) continue;
        if (e.value.empty()) {
          headers.erase(it);
        } else {
          it->second = e.value;
        }
        break;
      }
      if (seen < want && !e.value.empty()) headers.emplace_back(e.name, e.value);
    }
  }
}

// ------------------------------------------------------------------ one SMTP session through the chain
struct Outcome {
  std::string id;
  std::string disposition = "accept";  // accept, reject, tempfail, discard, quarantine, error
  std::string stage = "eom";
  std::string decided_by;
  std::string code;
  Edits edits;
  double ms = 0;
};

struct Options {
  std::string corpus;
  std::vector<std::string> milters;
  unsigned connections = 1;
  double seconds = 0;
  unsigned passes = 0;
  double warmup_seconds = 0;
  std::vector<std::pair<std::string, int>> daemons;
  std::vector<std::pair<std::string, int>> observed;  // measured like daemons, not added to their total
  std::string results;
};

std::string queue_id(std::mt19937_64& rng) {
  static constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string id;
  for (int i = 0; i < 10; ++i) id.push_back(kHex[rng() % 16]);
  return id;
}

using Macros = std::vector<std::pair<std::string, std::string>>;

std::string cstr(std::string_view s) {
  std::string out(s);
  out.push_back('\0');
  return out;
}

bool final_stop(Verdict v) {
  return v == Verdict::kReject || v == Verdict::kTempfail || v == Verdict::kDiscard ||
         v == Verdict::kConnFail || v == Verdict::kShutdown;
}

void set_stop(Outcome& o, const Reply& r, std::string_view stage, const MilterConn& m) {
  o.stage = std::string(stage);
  o.decided_by = m.name();
  o.code = r.code;
  switch (r.verdict) {
    case Verdict::kReject:
      o.disposition = "reject";
      break;
    case Verdict::kDiscard:
      o.disposition = "discard";
      break;
    default:
      o.disposition = "tempfail";
      break;
  }
}

// Runs one session; appends one Outcome per message. Throws ProtocolError (the caller records the rest as
// errors).
void run_session(const Session& s, const Options& opt, std::mt19937_64& rng, std::vector<Outcome>& out) {
  auto t0 = Clock::now();
  std::vector<MilterConn> conns;
  conns.reserve(opt.milters.size());
  for (std::size_t i = 0; i < opt.milters.size(); ++i) {
    conns.emplace_back(opt.milters[i], "milter" + std::to_string(i + 1));
    conns.back().negotiate();
  }
  std::vector<bool> active(conns.size(), true);  // false after SMFIR_ACCEPT at connect/helo

  // CONNECT: hostname, family '4', port, address.
  std::string connect_data = cstr(s.client_name);
  connect_data.push_back('4');
  const std::uint16_t port = htons(static_cast<std::uint16_t>(40000 + rng() % 20000));
  connect_data.append(reinterpret_cast<const char*>(&port), 2);
  connect_data += cstr(s.client_addr);
  const Macros connect_macros = {{"j", "mx.pydis.wtf"},
                                 {"{daemon_name}", "mx.pydis.wtf"},
                                 {"{daemon_addr}", "127.0.0.1"},
                                 {"v", "Postfix 3.7.11"},
                                 {"_", s.client_name + " [" + s.client_addr + "]"}};
  std::optional<std::pair<Reply, std::string>> session_stop;
  const MilterConn* stopper = nullptr;
  for (std::size_t i = 0; i < conns.size() && !session_stop; ++i) {
    Reply r = conns[i].event('C', connect_macros, kNoConnect, kNrConn, connect_data);
    if (r.verdict == Verdict::kAccept) active[i] = false;
    if (final_stop(r.verdict)) {
      session_stop = {r, "connect"};
      stopper = &conns[i];
    }
  }
  for (std::size_t i = 0; i < conns.size() && !session_stop; ++i) {
    if (!active[i]) continue;
    Reply r = conns[i].event('H', {}, kNoHelo, kNrHelo, cstr(s.helo));
    if (r.verdict == Verdict::kAccept) active[i] = false;
    if (final_stop(r.verdict)) {
      session_stop = {r, "helo"};
      stopper = &conns[i];
    }
  }

  for (const Message& msg : s.messages) {
    Outcome o;
    o.id = msg.id;
    if (session_stop) {
      set_stop(o, session_stop->first, session_stop->second, *stopper);
      o.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      out.push_back(std::move(o));
      t0 = Clock::now();
      continue;
    }
    std::vector<bool> in_msg = active;  // false after SMFIR_ACCEPT for this message
    bool stopped = false;
    auto stop_if = [&](const Reply& r, std::size_t i, std::string_view stage) {
      if (r.verdict == Verdict::kAccept) in_msg[i] = false;
      if (final_stop(r.verdict)) {
        set_stop(o, r, stage, conns[i]);
        stopped = true;
      }
      return stopped;
    };
    // MAIL FROM:<x> SIZE=n
    std::string mail = cstr("<" + msg.mail_from + ">") + cstr("SIZE=" + std::to_string(msg.size));
    const Macros mail_macros = {{"{mail_addr}", msg.mail_from}};
    for (std::size_t i = 0; i < conns.size() && !stopped; ++i)
      if (in_msg[i]) stop_if(conns[i].event('M', mail_macros, kNoMail, kNrMail, mail), i, "mail");
    const std::string qid = queue_id(rng);
    std::size_t accepted_rcpts = 0;
    Reply last_rcpt_reject;
    const MilterConn* rcpt_rejecter = nullptr;
    for (const std::string& rcpt : msg.rcpts) {
      if (stopped) break;
      const std::size_t at = rcpt.rfind('@');
      const Macros rcpt_macros = {
          {"{rcpt_addr}", rcpt},
          {"{rcpt_host}", at == std::string::npos ? std::string() : rcpt.substr(at + 1)},
          {"{rcpt_mailer}", "virtual"}};
      bool rejected = false;
      for (std::size_t i = 0; i < conns.size() && !rejected; ++i) {
        if (!in_msg[i]) continue;
        Reply r = conns[i].event('R', rcpt_macros, kNoRcpt, kNrRcpt, cstr("<" + rcpt + ">"));
        if (r.verdict == Verdict::kAccept) in_msg[i] = false;
        if (r.verdict == Verdict::kReject || r.verdict == Verdict::kTempfail) {
          rejected = true;
          last_rcpt_reject = r;
          rcpt_rejecter = &conns[i];
        } else if (final_stop(r.verdict)) {
          stop_if(r, i, "rcpt");
          rejected = true;
        }
      }
      if (!rejected) ++accepted_rcpts;
    }
    if (!stopped && accepted_rcpts == 0 && rcpt_rejecter != nullptr) {
      set_stop(o, last_rcpt_reject, "rcpt", *rcpt_rejecter);
      stopped = true;
    }
    const Macros i_macro = {{"i", qid}};
    for (std::size_t i = 0; i < conns.size() && !stopped; ++i)
      if (in_msg[i]) stop_if(conns[i].event('T', i_macro, kNoData, kNrData, {}), i, "data");

    // Content: each milter in turn sees the message as the previous ones left it.
    auto headers = msg.headers;
    for (std::size_t i = 0; i < conns.size() && !stopped; ++i) {
      if (!in_msg[i]) continue;
      MilterConn& c = conns[i];
      const bool leadspc = (c.events() & kHdrLeadSpc) != 0;
      bool done_with_this = false;
      for (const auto& [name, value] : headers) {
        std::string_view v = value;
        if (!leadspc && v.starts_with(' ')) v.remove_prefix(1);
        const Reply r = c.event('L', i_macro, kNoHdrs, kNrHdr, cstr(name) + cstr(v));
        if (r.verdict == Verdict::kAccept || stop_if(r, i, "header")) {
          done_with_this = true;
          break;
        }
      }
      if (done_with_this) continue;
      {
        const Reply r = c.event('N', i_macro, kNoEoh, kNrEoh, {});
        if (r.verdict == Verdict::kAccept || stop_if(r, i, "eoh")) continue;
      }
      bool skip_body = false;
      for (std::size_t at = 0; at < msg.body.size() && !skip_body; at += kChunk) {
        const Reply r = c.event('B', i_macro, kNoBody, kNrBody, msg.body.substr(at, kChunk));
        if (r.verdict == Verdict::kSkipRest) skip_body = true;
        if (r.verdict == Verdict::kAccept || stop_if(r, i, "body")) {
          done_with_this = true;
          break;
        }
      }
      if (done_with_this) continue;
      Edits e;
      const Reply r = c.event('E', i_macro, 0, 0, {}, &e);
      apply_header_edits(headers, c.take_header_edits());
      for (auto& h : e.added_headers) o.edits.added_headers.push_back(c.name() + " " + h);
      for (auto& a : e.rcpt_added) o.edits.rcpt_added.push_back(std::move(a));
      for (auto& d : e.rcpt_deleted) o.edits.rcpt_deleted.push_back(std::move(d));
      if (!e.quarantine.empty()) o.edits.quarantine = c.name() + " " + e.quarantine;
      if (!e.new_from.empty()) o.edits.new_from = e.new_from;
      o.edits.body_replaced = o.edits.body_replaced || e.body_replaced;
      stop_if(r, i, "eom");
    }
    if (!stopped && !o.edits.quarantine.empty()) o.disposition = "quarantine";
    // smtpd's mail_reset: SMFIC_ABORT to every milter still in the session; it leaves with the next write.
    for (std::size_t i = 0; i < conns.size(); ++i)
      if (active[i]) conns[i].abort_message();
    const auto t1 = Clock::now();
    o.ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    out.push_back(std::move(o));
    t0 = t1;
  }
  // With libmilter, Postfix closes the socket at the end of the session, after SMFIC_QUIT unless the milter
  // accepted or rejected the connection.
  if (!session_stop)
    for (std::size_t i = 0; i < conns.size(); ++i)
      if (active[i]) conns[i].quit();
}

// ------------------------------------------------------------------ daemon CPU and memory from /proc
struct ProcUsage {
  std::uint64_t ticks = 0;
  std::uint64_t hwm_kb = 0;      // sum of VmHWM (counts pages shared after fork once per process)
  std::uint64_t hwm_max_kb = 0;  // the largest process's VmHWM
  std::uint64_t pss_kb = 0;      // sum of the current Pss (shared pages split between their users)
  int procs = 0;
};

// The first number after `key` in a /proc file of "Key: value kB" lines.
std::uint64_t proc_kb(const std::string& path, std::string_view key) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) != 0) continue;
    std::istringstream v(line.substr(key.size()));
    std::uint64_t kb = 0;
    v >> kb;
    return kb;
  }
  return 0;
}

// The process and its descendants (rspamd's workers), from /proc/*/stat.
std::vector<int> process_tree(int root) {
  std::vector<std::pair<int, int>> parent;  // pid, ppid
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string n = e.path().filename().string();
    int pid = 0;
    if (std::from_chars(n.data(), n.data() + n.size(), pid).ec != std::errc()) continue;
    std::ifstream f(e.path() / "stat");
    std::string stat;
    if (!std::getline(f, stat)) continue;
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    parent.emplace_back(pid, ppid);
  }
  std::vector<int> tree = {root};
  for (std::size_t k = 0; k < tree.size(); ++k)
    for (const auto& [pid, ppid] : parent)
      if (ppid == tree[k]) tree.push_back(pid);
  return tree;
}

ProcUsage usage_of(int root) {
  ProcUsage u;
  for (int pid : process_tree(root)) {
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ifstream f(dir + "/stat");
    std::string stat;
    if (!std::getline(f, stat)) continue;
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    std::uint64_t utime = 0;
    std::uint64_t stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) std::from_chars(field.data(), field.data() + field.size(), utime);
      if (i == 15) std::from_chars(field.data(), field.data() + field.size(), stime);
    }
    u.ticks += utime + stime;
    const std::uint64_t hwm = proc_kb(dir + "/status", "VmHWM:");
    u.hwm_kb += hwm;
    u.hwm_max_kb = std::max(u.hwm_max_kb, hwm);
    u.pss_kb += proc_kb(dir + "/smaps_rollup", "Pss:");
    ++u.procs;
  }
  return u;
}

// ------------------------------------------------------------------ the load
struct PhaseResult {
  std::vector<Outcome> outcomes;  // of the first pass, in corpus order, when recording
  std::vector<double> latencies;
  std::uint64_t messages = 0;
  std::uint64_t sessions = 0;
  std::uint64_t errors = 0;
  std::uint64_t dispositions[6] = {};  // accept, reject, tempfail, discard, quarantine, error
  double seconds = 0;
};

std::size_t disposition_index(const std::string& d) {
  static const char* const kNames[] = {"accept", "reject", "tempfail", "discard", "quarantine", "error"};
  for (std::size_t i = 0; i < 6; ++i)
    if (d == kNames[i]) return i;
  return 5;
}

// Runs sessions on opt.connections threads: `passes` passes over the corpus, or until `seconds` have passed.
PhaseResult run_phase(const std::vector<Session>& sessions, const Options& opt, double seconds,
                      unsigned passes, bool record) {
  const std::uint64_t n = sessions.size();
  const std::uint64_t limit = passes > 0 ? n * passes : UINT64_MAX;
  std::atomic<std::uint64_t> next{0};
  std::mutex mu;
  PhaseResult total;
  if (record) total.outcomes.resize(n);
  std::vector<std::vector<Outcome>> recorded(record ? n : 0);
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::atomic<bool> printed{false};
  auto work = [&](unsigned t) {
    std::mt19937_64 rng(0x6d696c746572ULL + t);
    PhaseResult mine;
    for (;;) {
      const std::uint64_t k = next.fetch_add(1, std::memory_order_relaxed);
      if (k >= limit || (seconds > 0 && Clock::now() >= deadline)) break;
      const Session& s = sessions[k % n];
      std::vector<Outcome> outs;
      try {
        run_session(s, opt, rng, outs);
      } catch (const std::exception& e) {
        if (!printed.exchange(true))
          std::cerr << "milter_load: session " << k % n << ": " << e.what() << '\n';
        for (std::size_t m = outs.size(); m < s.messages.size(); ++m) {
          Outcome o;
          o.id = s.messages[m].id;
          o.disposition = "error";
          o.stage = "protocol";
          o.code = e.what();
          outs.push_back(std::move(o));
        }
      }
      ++mine.sessions;
      for (const auto& o : outs) {
        ++mine.messages;
        ++mine.dispositions[disposition_index(o.disposition)];
        if (o.disposition == "error") {
          ++mine.errors;
        } else {
          mine.latencies.push_back(o.ms);
        }
      }
      if (record && k < n) recorded[k] = std::move(outs);
    }
    const std::lock_guard lock(mu);
    total.messages += mine.messages;
    total.sessions += mine.sessions;
    total.errors += mine.errors;
    for (std::size_t i = 0; i < 6; ++i) total.dispositions[i] += mine.dispositions[i];
    total.latencies.insert(total.latencies.end(), mine.latencies.begin(), mine.latencies.end());
  };
  std::vector<std::thread> pool;
  pool.reserve(opt.connections);
  for (unsigned t = 0; t < opt.connections; ++t) pool.emplace_back(work, t);
  for (auto& t : pool) t.join();
  total.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  total.outcomes.clear();
  for (auto& v : recorded)
    for (auto& o : v) total.outcomes.push_back(std::move(o));
  return total;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

bool parse_number(std::string_view v, auto& out) {
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  return r.ec == std::errc() && r.ptr == v.data() + v.size();
}

bool parse_args(int argc, char** argv, Options& o) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (i + 1 >= args.size()) return false;
    const std::string_view v = args[++i];
    if (a == "--corpus") {
      o.corpus = std::string(v);
    } else if (a == "--milter") {
      o.milters.emplace_back(v);
    } else if (a == "--connections") {
      if (!parse_number(v, o.connections) || o.connections == 0 || o.connections > 1024) return false;
    } else if (a == "--seconds") {
      if (!parse_number(v, o.seconds) || o.seconds <= 0) return false;
    } else if (a == "--passes") {
      if (!parse_number(v, o.passes) || o.passes == 0) return false;
    } else if (a == "--warmup-seconds") {
      if (!parse_number(v, o.warmup_seconds) || o.warmup_seconds < 0) return false;
    } else if (a == "--daemon" || a == "--observe") {
      const std::size_t eq = v.find('=');
      int pid = 0;
      if (eq == std::string_view::npos || !parse_number(v.substr(eq + 1), pid) || pid <= 0) return false;
      (a == "--daemon" ? o.daemons : o.observed).emplace_back(std::string(v.substr(0, eq)), pid);
    } else if (a == "--results") {
      o.results = std::string(v);
    } else {
      return false;
    }
  }
  return !o.corpus.empty() && !o.milters.empty() && (o.seconds > 0) != (o.passes > 0);
}

void emit(std::string_view key, const auto& value) {
  std::cout << key << ' ' << value << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!parse_args(argc, argv, opt)) {
    std::cerr << "usage: milter_load --corpus FILE --milter unix:PATH|inet:HOST:PORT [--milter ...]\n"
                 "                   [--connections N] (--seconds S | --passes P) [--warmup-seconds W]\n"
                 "                   [--daemon NAME=PID]... [--observe NAME=PID]... [--results FILE.jsonl]\n";
    return 2;
  }
  std::vector<Session> sessions;
  try {
    sessions = read_corpus(opt.corpus);
  } catch (const std::exception& e) {
    std::cerr << "milter_load: " << e.what() << '\n';
    return 2;
  }
  if (sessions.empty()) {
    std::cerr << "milter_load: empty corpus\n";
    return 2;
  }
  if (opt.warmup_seconds > 0) run_phase(sessions, opt, opt.warmup_seconds, 0, false);

  std::vector<ProcUsage> before;
  before.reserve(opt.daemons.size());
  for (const auto& d : opt.daemons) before.push_back(usage_of(d.second));
  std::vector<ProcUsage> observed_before;
  observed_before.reserve(opt.observed.size());
  for (const auto& d : opt.observed) observed_before.push_back(usage_of(d.second));
  rusage self_before{};
  ::getrusage(RUSAGE_SELF, &self_before);
  PhaseResult r = run_phase(sessions, opt, opt.seconds, opt.passes, !opt.results.empty());
  const long ticks_per_s = ::sysconf(_SC_CLK_TCK);

  const std::uint64_t ok = r.messages - r.errors;
  emit("connections", opt.connections);
  emit("milters", opt.milters.size());
  emit("sessions", r.sessions);
  emit("messages", r.messages);
  emit("seconds", r.seconds);
  emit("msgs_per_s", r.seconds > 0 ? static_cast<double>(ok) / r.seconds : 0.0);
  emit("errors", r.errors);
  static const char* const kNames[] = {"accept", "reject", "tempfail", "discard", "quarantine", "error"};
  for (std::size_t i = 0; i < 6; ++i) emit(std::string("disposition_") + kNames[i], r.dispositions[i]);
  emit("p50_ms", percentile(r.latencies, 0.50));
  emit("p90_ms", percentile(r.latencies, 0.90));
  emit("p99_ms", percentile(r.latencies, 0.99));
  emit("max_ms", r.latencies.empty() ? 0.0 : *std::max_element(r.latencies.begin(), r.latencies.end()));
  double cpu_total = 0;
  std::uint64_t hwm_total = 0;
  for (std::size_t i = 0; i < opt.daemons.size(); ++i) {
    const ProcUsage after = usage_of(opt.daemons[i].second);
    const double ms =
        static_cast<double>(after.ticks - before[i].ticks) * 1000.0 / static_cast<double>(ticks_per_s);
    const std::string& name = opt.daemons[i].first;
    emit("daemon_" + name + "_cpu_ms", ms);
    emit("daemon_" + name + "_cpu_ms_per_msg", ok > 0 ? ms / static_cast<double>(ok) : 0.0);
    emit("daemon_" + name + "_hwm_kb", after.hwm_kb);
    emit("daemon_" + name + "_hwm_max_kb", after.hwm_max_kb);
    emit("daemon_" + name + "_pss_kb", after.pss_kb);
    emit("daemon_" + name + "_procs", after.procs);
    cpu_total += ms;
    hwm_total += after.hwm_kb;
  }
  if (!opt.daemons.empty()) {
    emit("cpu_ms_per_msg", ok > 0 ? cpu_total / static_cast<double>(ok) : 0.0);
    emit("hwm_kb", hwm_total);
  }
  for (std::size_t i = 0; i < opt.observed.size(); ++i) {
    const ProcUsage after = usage_of(opt.observed[i].second);
    const double ms = static_cast<double>(after.ticks - observed_before[i].ticks) * 1000.0 /
                      static_cast<double>(ticks_per_s);
    emit("observed_" + opt.observed[i].first + "_cpu_ms_per_msg",
         ok > 0 ? ms / static_cast<double>(ok) : 0.0);
  }
  rusage self_after{};
  ::getrusage(RUSAGE_SELF, &self_after);
  auto tv_ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1000.0 + static_cast<double>(t.tv_usec) / 1000.0;
  };
  const double driver_ms = tv_ms(self_after.ru_utime) + tv_ms(self_after.ru_stime) -
                           tv_ms(self_before.ru_utime) - tv_ms(self_before.ru_stime);
  emit("driver_cpu_ms_per_msg", ok > 0 ? driver_ms / static_cast<double>(ok) : 0.0);

  if (!opt.results.empty()) {
    std::ofstream f(opt.results);
    for (const auto& o : r.outcomes) {
      nlohmann::json j = {{"id", o.id},
                          {"disposition", o.disposition},
                          {"stage", o.stage},
                          {"decided_by", o.decided_by},
                          {"code", o.code},
                          {"headers", o.edits.added_headers},
                          {"rcpt_added", o.edits.rcpt_added},
                          {"rcpt_deleted", o.edits.rcpt_deleted},
                          {"quarantine", o.edits.quarantine},
                          {"ms", o.ms}};
      f << j.dump() << '\n';
    }
    if (!f) {
      std::cerr << "milter_load: cannot write " << opt.results << '\n';
      return 2;
    }
  }
  return ok == 0 ? 3 : 0;
}
