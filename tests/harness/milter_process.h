// milter_process.h: the real chainmail-milter (build bin/chainmail-milter) run as a child of the test.
//
//   MilterProcess milter;
//   milter.start(config_path);                  // --config FILE --listen inet:PORT@127.0.0.1 on a free port
//   options.milter = milter.postfix_socket();   // "inet:127.0.0.1:PORT" for main.cf smtpd_milters
//   miltertest: mt.connect(milter.libmilter_socket())
//   milter.reload();                            // SIGHUP
//   milter.stop(std::chrono::milliseconds(0));  // SIGTERM and, at once, SIGKILL: a milter that is gone
//
// The milter always runs in the foreground and logs to stderr when the configuration says milter.log =
// "stderr"; both its streams go to log_path(). start() waits until the milter port accepts connections, and
// so does every port in `also_wait_for` (the socketmap server the milter hosts when socketmap.listen is set).
//
// DIAGNOSTICS: start() throws std::runtime_error when the binary is missing, or with the tail of the log when
// the milter exits (exit 78: bad configuration) or does not listen in time.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "harness/process.h"
#include "harness/temp_dir.h"

namespace chainmail::harness {

std::filesystem::path milter_bin();  // build_bin_dir()/chainmail-milter

class MilterProcess {
 public:
  MilterProcess();

  // Starts the milter with `config` on a new free port (or `port` when not 0). Stops a running one first.
  void start(const std::filesystem::path& config, const std::vector<std::uint16_t>& also_wait_for = {},
             std::uint16_t port = 0);
  // Same configuration and port as the last start().
  void restart();
  // SIGTERM; SIGKILL once `timeout` has passed (libmilter may take ~4.5 s to wind down after SIGTERM).
  // Returns the exit status as Process::terminate does; -1 when it never ran.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(8));
  void reload();  // SIGHUP
  bool running() { return process_.running(); }
  pid_t pid() const { return process_.pid(); }

  std::uint16_t port() const { return port_; }
  std::string postfix_socket() const;    // inet:127.0.0.1:PORT
  std::string libmilter_socket() const;  // inet:PORT@127.0.0.1 (milter.listen, miltertest)
  const std::filesystem::path& log_path() const { return log_path_; }
  std::string log() const;

 private:
  void launch();

  TempDir dir_;
  std::filesystem::path log_path_;
  std::filesystem::path config_;
  std::vector<std::uint16_t> also_wait_for_;
  std::uint16_t port_ = 0;
  Process process_;
};

}  // namespace chainmail::harness
