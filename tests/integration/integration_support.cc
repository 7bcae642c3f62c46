// integration_support.cc: see integration_support.h.
#include "integration_support.h"

#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness/paths.h"

namespace chainmail::integration {
namespace {

// Replaces the first line that starts with `key` followed by " =" with `replacement`.
void replace_line(std::string& text, std::string_view key, const std::string& replacement) {
  const std::string prefix = std::string(key) + " =";
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = text.find('\n', pos);
    const std::size_t len = (end == std::string::npos ? text.size() : end) - pos;
    if (std::string_view(text).substr(pos, len).starts_with(prefix)) {
      text.replace(pos, len, replacement);
      return;
    }
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  throw std::runtime_error("conf/chainmail.conf has no line starting with \"" + prefix + "\"");
}

}  // namespace

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::filesystem::path chainmail_bin() {
  return harness::build_bin_dir() / "chainmail";
}

std::string demo_config(const std::vector<std::string>& uris,
                        const std::map<std::string, std::string>& settings) {
  std::string text = read_text(harness::source_dir() / "conf" / "chainmail.conf");
  std::string list = "[";
  for (std::size_t i = 0; i < uris.size(); ++i) list += (i != 0 ? ", " : "") + toml_string(uris[i]);
  list += "]";
  replace_line(text, "uris", "uris = " + list);
  replace_line(text, "bind_password_file",
               "bind_password = " + toml_string(std::string(harness::demo::kBindPassword)));
  for (const auto& [name, value] : settings) replace_line(text, name, name + " = " + value);
  return text;
}

ConfigFile::ConfigFile(std::string_view text, std::string_view name)
    : dir_("config"), path_(dir_.path() / name) {
  std::ofstream out(path_, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path_.string());
}

RouteRun route(const std::filesystem::path& config, const std::vector<std::string>& addresses,
               std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {chainmail_bin().string(), "route", "--config", config.string(), "--json"};
  argv.insert(argv.end(), addresses.begin(), addresses.end());
  RouteRun out;
  const auto start = std::chrono::steady_clock::now();
  out.run = harness::run(argv, {}, timeout);
  out.elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  out.json = nlohmann::json::parse(out.run.out, nullptr, /*allow_exceptions=*/false);
  return out;
}

std::ostream& operator<<(std::ostream& out, const TargetView& t) {
  return out << "{" << t.kind << " " << t.address << " via " << t.rules << "}";
}

std::vector<TargetView> targets_of(const nlohmann::json& result) {
  std::vector<TargetView> out;
  if (!result.is_object() || !result.contains("targets")) return out;
  for (const auto& t : result["targets"]) {
    TargetView view{t.value("kind", ""), t.value("address", ""), ""};
    for (const auto& step : t.value("path", nlohmann::json::array())) {
      view.rules += (view.rules.empty() ? "" : ">") + step.value("rule", std::string("?"));
    }
    out.push_back(std::move(view));
  }
  return out;
}

std::vector<std::string> warnings_of(const nlohmann::json& result) {
  std::vector<std::string> out;
  if (!result.is_object() || !result.contains("warnings")) return out;
  for (const auto& w : result["warnings"]) out.push_back(w.get<std::string>());
  return out;
}

bool is_single_address(std::string_view address) {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return false;
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  for (const char c : domain) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-' && c != '.') return false;
  }
  if (local.size() >= 2 && local.front() == '"' && local.back() == '"') {
    const std::string_view inner = local.substr(1, local.size() - 2);
    for (std::size_t i = 0; i < inner.size(); ++i) {
      if (inner[i] == '\\') {
        ++i;  // quoted-pair
      } else if (inner[i] == '"' || static_cast<unsigned char>(inner[i]) < 0x20) {
        return false;
      }
    }
    return true;
  }
  static constexpr std::string_view kAtextPunct = "!#$%&'*+-/=?^_`{|}~.";
  for (const char c : local) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && kAtextPunct.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return local.front() != '.' && local.back() != '.' && local.find("..") == std::string_view::npos;
}

bool has_sanitizer_report(std::string_view text) {
  return text.find("AddressSanitizer") != std::string_view::npos ||
         text.find("LeakSanitizer") != std::string_view::npos ||
         text.find("runtime error:") != std::string_view::npos;
}

}  // namespace chainmail::integration
