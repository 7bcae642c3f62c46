// milter_process.cc: see milter_process.h.
#include "harness/milter_process.h"

#include <signal.h>

#include <stdexcept>

#include "harness/files.h"
#include "harness/net.h"
#include "harness/paths.h"

namespace chainmail::harness {

std::filesystem::path milter_bin() {
  return build_bin_dir() / "chainmail-milter";
}

MilterProcess::MilterProcess() : dir_("milter"), log_path_(dir_.path() / "milter.log") {}

void MilterProcess::start(const std::filesystem::path& config,
                          const std::vector<std::uint16_t>& also_wait_for, std::uint16_t port) {
  stop();
  if (!std::filesystem::exists(milter_bin())) {
    throw std::runtime_error(milter_bin().string() + " does not exist: build the chainmail-milter target");
  }
  config_ = config;
  also_wait_for_ = also_wait_for;
  port_ = port != 0 ? port : free_port();
  launch();
}

void MilterProcess::restart() {
  if (port_ == 0) throw std::logic_error("MilterProcess::restart before start");
  stop();
  launch();
}

void MilterProcess::launch() {
  process_ = Process({milter_bin().string(), "--config", config_.string(), "--listen", libmilter_socket()},
                     log_path_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::vector<std::uint16_t> ports = also_wait_for_;
  ports.push_back(port_);
  for (const std::uint16_t port : ports) {
    while (!wait_for_port(port, std::chrono::milliseconds(50))) {
      if (!process_.running()) {
        throw std::runtime_error("chainmail-milter exited at startup (exit " +
                                 std::to_string(process_.terminate()) + "); log " + log_path_.string() +
                                 ":\n" + log_tail(log_path_));
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        process_.terminate(std::chrono::milliseconds(0));
        throw std::runtime_error("chainmail-milter did not listen on 127.0.0.1:" + std::to_string(port) +
                                 "; log " + log_path_.string() + ":\n" + log_tail(log_path_));
      }
    }
  }
}

int MilterProcess::stop(std::chrono::milliseconds timeout) {
  return process_.terminate(timeout);
}

void MilterProcess::reload() {
  if (!process_.running()) throw std::logic_error("MilterProcess::reload: not running");
  ::kill(process_.pid(), SIGHUP);
}

std::string MilterProcess::postfix_socket() const {
  return "inet:127.0.0.1:" + std::to_string(port_);
}

std::string MilterProcess::libmilter_socket() const {
  return "inet:" + std::to_string(port_) + "@127.0.0.1";
}

std::string MilterProcess::log() const {
  try {
    return read_file(log_path_);
  } catch (const std::runtime_error&) {
    return {};
  }
}

}  // namespace chainmail::harness
