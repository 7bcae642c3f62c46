// smtp_client.cc: see smtp_client.h.
#include "harness/smtp_client.h"

#include <stdexcept>

#include "harness/paths.h"

namespace chainmail::harness {
namespace {

constexpr const char* kPython = "/usr/bin/python3";  // Debian's, with python3-dkim and python3-dnspython

std::vector<std::string> dkim_args(const DkimSigner& signer) {
  return {"--dkim-key",  signer.key_file.string(), "--dkim-domain",
          signer.domain, "--dkim-selector",        signer.selector};
}

// "STEP CODE TEXT" lines, as smtp_send.py prints them.
std::vector<SmtpReply> parse_replies(std::string_view out) {
  std::vector<SmtpReply> replies;
  while (!out.empty()) {
    const std::size_t end = out.find('\n');
    std::string_view line = out.substr(0, end);
    out.remove_prefix(end == std::string_view::npos ? out.size() : end + 1);
    const std::size_t space1 = line.find(' ');
    if (space1 == std::string_view::npos) continue;
    const std::size_t space2 = line.find(' ', space1 + 1);
    SmtpReply reply;
    reply.step = std::string(line.substr(0, space1));
    const std::string code(line.substr(
        space1 + 1, space2 == std::string_view::npos ? std::string_view::npos : space2 - space1 - 1));
    try {
      reply.code = std::stoi(code);
    } catch (const std::exception&) {
      continue;  // Not a reply line.
    }
    if (space2 != std::string_view::npos) reply.text = std::string(line.substr(space2 + 1));
    replies.push_back(std::move(reply));
  }
  return replies;
}

}  // namespace

std::filesystem::path smtp_send_script() {
  return source_dir() / "tests" / "harness" / "smtp_send.py";
}

int SmtpSession::code(std::string_view step, std::size_t n) const {
  for (const auto& reply : replies) {
    if (reply.step == step && n-- == 0) return reply.code;
  }
  return 0;
}

std::string SmtpSession::text(std::string_view step, std::size_t n) const {
  for (const auto& reply : replies) {
    if (reply.step == step && n-- == 0) return reply.text;
  }
  return {};
}

std::string SmtpSession::queue_id() const {
  if (code("data") != 250) return {};
  const std::string data = text("data");
  static constexpr std::string_view kMarker = "queued as ";
  const std::size_t at = data.find(kMarker);
  if (at == std::string::npos) return {};
  const std::size_t start = at + kMarker.size();
  std::size_t end = start;
  while (end < data.size() && std::isalnum(static_cast<unsigned char>(data[end])) != 0) ++end;
  return data.substr(start, end - start);
}

std::string SmtpSession::transcript() const {
  std::string out;
  for (const auto& reply : replies) {
    out += reply.step + " " + std::to_string(reply.code) + " " + reply.text + "\n";
  }
  if (run.exit_code != 0 || !run.err.empty()) {
    out += "(smtp_send.py exit " + std::to_string(run.exit_code) + ": " + run.err + ")\n";
  }
  return out;
}

SmtpSession smtp_send(const SmtpSend& send) {
  std::vector<std::string> argv = {
      kPython,  smtp_send_script().string(), "send", "--server", send.server, "--helo", send.helo, "--from",
      send.from};
  for (const auto& rcpt : send.to) {
    argv.emplace_back("--to");
    argv.push_back(rcpt);
  }
  if (send.dkim) {
    const auto more = dkim_args(*send.dkim);
    argv.insert(argv.end(), more.begin(), more.end());
  }
  SmtpSession session;
  session.run = run(argv, send.message, std::chrono::seconds(60));
  session.replies = parse_replies(session.run.out);
  return session;
}

std::string dkim_sign(std::string_view message, const DkimSigner& signer) {
  std::vector<std::string> argv = {kPython, smtp_send_script().string(), "sign"};
  const auto more = dkim_args(signer);
  argv.insert(argv.end(), more.begin(), more.end());
  const RunResult r = run(argv, message);
  if (r.exit_code != 0) throw std::runtime_error("smtp_send.py sign failed: " + r.err);
  return r.out;
}

RunResult dkim_verify(std::string_view message, std::string_view dns, int index) {
  return run({kPython, smtp_send_script().string(), "verify", "--dns", std::string(dns), "--index",
              std::to_string(index)},
             message);
}

}  // namespace chainmail::harness
