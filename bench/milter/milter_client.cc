// milter_client.cc - the MTA side of the milter protocol for bench/milter (interface and behaviour:
// milter_client.h): one connection per milter (MilterConn), cleanup(8)'s header edits, and the SMTP session
// through the chain.
#include "bench/milter/milter_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "adapters/unique_fd.h"

namespace chainmail::bench {
namespace {

using Clock = std::chrono::steady_clock;

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

// ------------------------------------------------------------------ one milter connection

// Replies, in milter8.c's names.
enum class Verdict { kContinue, kAccept, kReject, kTempfail, kDiscard, kConnFail, kShutdown, kSkipRest };

struct Reply {
  Verdict verdict = Verdict::kContinue;
  std::string code;  // SMFIR_REPLYCODE text, if any
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

}  // namespace

void run_session(const Session& s, const std::vector<std::string>& milters, std::mt19937_64& rng,
                 std::vector<Outcome>& out) {
  auto t0 = Clock::now();
  std::vector<MilterConn> conns;
  conns.reserve(milters.size());
  for (std::size_t i = 0; i < milters.size(); ++i) {
    conns.emplace_back(milters[i], "milter" + std::to_string(i + 1));
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

}  // namespace chainmail::bench
