// auth_load.cc - load driver for the auth benchmark: speaks Dovecot's auth-client protocol (the one Postfix's
// smtpd uses for SASL, doc: dovecot.org "Dovecot Authentication Protocol") on an auth-client socket.
//
//   auth_load --socket PATH --users N --uid-format 'user%05d' --password-format 'pw-%05d'
//             --clients C --seconds S [--warmup W]
//
// C clients, each on its own connection with one request in flight, like C smtpd processes: handshake
// (VERSION, CPID; read until DONE), then AUTH PLAIN for user after user, each a different directory entry
// (client c takes users c, c+C, c+2C, ... round the directory), so no server-side cache could serve them.
// Prints one JSON object: requests, ok, failed, temporary failures, elapsed seconds, logins/s,
// p50/p90/p99/max latency in milliseconds. Requests during the first W seconds are sent but not counted in
// those; all_requests counts every login sent, warm-up included, for per-login server operation counts.
//
// DIAGNOSTICS: a connection that breaks or a reply that is neither OK nor FAIL ends the run with exit 1 and
// the line received; failed logins are counted (a correct benchmark run has none) and the first is shown.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/unique_fd.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16U) |
                       (static_cast<unsigned char>(in[i + 1]) << 8U) | static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18U) & 63U];
    out += kAlphabet[(v >> 12U) & 63U];
    out += kAlphabet[(v >> 6U) & 63U];
    out += kAlphabet[v & 63U];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16U;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8U;
    out += kAlphabet[(v >> 18U) & 63U];
    out += kAlphabet[(v >> 12U) & 63U];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6U) & 63U] : '=';
    out += '=';
  }
  return out;
}

// printf-style formatting of one %d / %u placeholder, without printf on a runtime format.
std::string expand(const std::string& format, int n) {
  char digits[32];
  std::string out;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out += format[i];
      continue;
    }
    std::size_t j = i + 1;
    int width = 0;
    while (j < format.size() && format[j] >= '0' && format[j] <= '9')
      width = width * 10 + (format[j++] - '0');
    if (j < format.size() && (format[j] == 'd' || format[j] == 'u')) {
      const int len = std::snprintf(digits, sizeof digits, "%0*d", width, n);
      out.append(digits, static_cast<std::size_t>(std::max(len, 0)));
      i = j;
    } else {
      out += format[i];
    }
  }
  return out;
}

class Connection {
 public:
  explicit Connection(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) throw std::runtime_error("socket path too long: " + path);
    path.copy(sa.sun_path, path.size());
    if (fd_.get() < 0 || ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("cannot connect to " + path);
    send("VERSION\t1\t2\nCPID\t" + std::to_string(::getpid()) + "\n");
    while (read_line() != "DONE") {
    }
  }

  void send(const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      const auto n = ::write(fd_.get(), data.data() + done, data.size() - done);
      if (n <= 0) throw std::runtime_error("write to the auth socket failed");
      done += static_cast<std::size_t>(n);
    }
  }

  std::string read_line() {
    while (true) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      char chunk[4096];
      const auto n = ::read(fd_.get(), chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("the auth server closed the connection");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  chainmail::UniqueFd fd_;
  std::string buffer_;
};

struct Totals {
  std::mutex mu;
  std::vector<double> latencies_ms;
  long ok = 0;
  long failed = 0;
  long temporary = 0;
  long all = 0;  // also those of the warm-up: the server's operation counts cover them too
  std::string first_failure;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Dovecot auth-client protocol load driver (PLAIN logins)"};
  std::string socket_path;
  std::string uid_format = "user%05d";
  std::string password_format = "pw-%05d";
  int users = 10000;
  int clients = 16;
  double seconds = 5;
  double warmup = 1;
  app.add_option("--socket", socket_path, "auth-client socket")->required();
  app.add_option("--users", users, "users in the directory (numbered from 1)");
  app.add_option("--uid-format", uid_format, "login of user N (%d or %0Nd)");
  app.add_option("--password-format", password_format, "password of user N");
  app.add_option("--clients", clients, "concurrent connections");
  app.add_option("--seconds", seconds, "measured seconds");
  app.add_option("--warmup", warmup, "seconds of load before measuring");
  CLI11_PARSE(app, argc, argv);

  Totals totals;
  std::atomic<bool> broken{false};
  std::string broken_why;
  std::mutex broken_mu;
  const auto start = Clock::now();
  const auto measure_from =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  const auto end =
      measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));

  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(clients));
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::vector<double> mine;
      long ok = 0;
      long failed = 0;
      long temporary = 0;
      long all = 0;
      std::string first_failure;
      try {
        Connection conn(socket_path);
        int user = c;
        for (unsigned id = 1; !broken.load(); ++id) {
          const auto sent = Clock::now();
          if (sent >= end) break;
          const int n = user % users + 1;
          user += clients;
          const std::string plain =
              std::string(1, '\0') + expand(uid_format, n) + '\0' + expand(password_format, n);
          conn.send("AUTH\t" + std::to_string(id) +
                    "\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1" +
                    "\tsecured\tresp=" + base64(plain) + "\n");
          std::string line;
          const std::string want_ok = "OK\t" + std::to_string(id);
          const std::string want_fail = "FAIL\t" + std::to_string(id);
          do {
            line = conn.read_line();
          } while (line.rfind("OK\t", 0) != 0 && line.rfind("FAIL\t", 0) != 0 &&
                   line.rfind("CONT\t", 0) != 0);
          const auto done = Clock::now();
          ++all;
          if (sent < measure_from) continue;
          mine.push_back(std::chrono::duration<double, std::milli>(done - sent).count());
          if (line.rfind(want_ok, 0) == 0) {
            ++ok;
          } else {
            ++failed;
            if (line.find("\ttemp") != std::string::npos) ++temporary;
            if (first_failure.empty()) first_failure = line;
          }
        }
      } catch (const std::exception& e) {
        const std::lock_guard lock(broken_mu);
        if (!broken.exchange(true)) broken_why = e.what();
      }
      const std::lock_guard lock(totals.mu);
      totals.latencies_ms.insert(totals.latencies_ms.end(), mine.begin(), mine.end());
      totals.ok += ok;
      totals.failed += failed;
      totals.temporary += temporary;
      totals.all += all;
      if (totals.first_failure.empty()) totals.first_failure = first_failure;
    });
  }
  for (auto& t : threads) t.join();
  if (broken) {
    std::cerr << "auth_load: " << broken_why << "\n";
    return 1;
  }
  auto& lat = totals.latencies_ms;
  std::sort(lat.begin(), lat.end());
  const auto pct = [&lat](double p) {
    if (lat.empty()) return 0.0;
    return lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * static_cast<double>(lat.size())))];
  };
  if (!totals.first_failure.empty())
    std::cerr << "auth_load: first failure: " << totals.first_failure << "\n";
  std::printf(
      "{\"clients\": %d, \"all_requests\": %ld, \"requests\": %zu, \"ok\": %ld, \"failed\": %ld, "
      "\"temporary\": %ld, \"seconds\": %.3f, "
      "\"logins_per_s\": %.1f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
      clients, totals.all, lat.size(), totals.ok, totals.failed, totals.temporary, seconds,
      static_cast<double>(totals.ok) / seconds, pct(0.50), pct(0.90), pct(0.99),
      lat.empty() ? 0.0 : lat.back());
  return 0;
}
