// milter_load.cc - the milter benchmark's load driver: replays a corpus through one milter or a chain, as
// Postfix 3.7 would (the protocol and what of Postfix it mimics: milter_client.h), from N connections at
// once, and measures throughput, latency and the daemons' CPU and memory.
//
//   milter_load --corpus corpus.txt --milter unix:/path/sock|inet:127.0.0.1:PORT [--milter ...]
//               [--connections N] [--seconds S | --passes P] [--warmup-seconds W]
//               [--daemon NAME=PID]... [--observe NAME=PID]... [--results FILE.jsonl]
//
// Corpus (bench/milter/gen_corpus.py): "session CLIENT_ADDR CLIENT_NAME HELO", then per message
// "message ID MAIL_FROM FILE" and its "rcpt ADDRESS" lines. FILE is the message as received (CRLF).
//
// Each connection is a thread replaying whole SMTP sessions (run_session) one after another, taking the next
// session of the corpus in turn, for --passes passes or until --seconds have passed.
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
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench/milter/milter_client.h"

namespace {

using Clock = std::chrono::steady_clock;
using chainmail::bench::Message;
using chainmail::bench::Outcome;
using chainmail::bench::Session;

// ------------------------------------------------------------------ corpus
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

// ------------------------------------------------------------------ command line
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
        chainmail::bench::run_session(s, opt.milters, rng, outs);
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
