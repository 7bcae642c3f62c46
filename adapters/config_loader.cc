#include "adapters/config_loader.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <fstream>
#include <map>
#include <sstream>

namespace chainmail {
namespace {

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

class Loader {
 public:
  Loader(std::string name, std::filesystem::path base_dir)
      : name_(std::move(name)), base_(std::move(base_dir)) {}

  LoadedConfig load(std::string_view text) {
    out_.config = default_config();
    toml::table root;
    try {
      root = toml::parse(text, name_);
    } catch (const toml::parse_error& e) {
      error(e.source().begin.line, "", std::string(e.description()));
      return std::move(out_);
    }
    for (auto&& [key, node] : root) {
      const std::string section(key.str());
      const Param* table_param = find(section);
      if (table_param != nullptr && std::holds_alternative<TableParam>(table_param->kind)) {
        load_table(*table_param, node);
        continue;
      }
      const auto* tbl = node.as_table();
      if (tbl == nullptr || !known_section(section)) {
        error(line(key.source()), section, "unknown key");
        continue;
      }
      for (auto&& [name, value] : *tbl) {
        const std::string full = section + "." + std::string(name.str());
        const Param* p = find(full);
        if (p == nullptr && section == "autoreply" && value.is_table()) {  // a profile, [autoreply.NAME]
          profiles_.emplace_back(std::string(name.str()), value.as_table());
          continue;
        }
        if (p == nullptr) {
          error(line(name.source()), full, "unknown key");
          continue;
        }
        if (std::holds_alternative<TableParam>(p->kind)) {  // a sub-table such as [dkim.signing]
          load_table(*p, value);
          continue;
        }
        lines_[full] = line(value.source());
        load_value(*p, full, value);
      }
    }
    load_profiles();
    resolve_files();
    for (const auto& e : validate(out_.config)) {
      auto it = lines_.find(e.key);
      if (it == lines_.end()) it = lines_.find(e.key.substr(0, e.key.find('.')));
      error(it == lines_.end() ? 0 : it->second, e.key, e.message);
    }
    return std::move(out_);
  }

 private:
  static std::uint32_t line(const toml::source_region& s) { return s.begin.line; }

  void error(std::uint32_t at, const std::string& key, const std::string& message) {
    std::string where = name_;
    if (at != 0) where += ":" + std::to_string(at);
    out_.errors.push_back(where + ": " + (key.empty() ? "" : key + ": ") + message);
  }

  // Each [autoreply.NAME] starts from the whole [autoreply] (read by now, whatever the order in the file)
  // and sets its own keys through the same parameter table, so types and bounds are checked alike.
  void load_profiles() {
    for (const auto& [name, tbl] : profiles_) {
      Config scratch = out_.config;
      for (auto&& [key, value] : *tbl) {
        const std::string param = "autoreply." + std::string(key.str());
        const std::string full = "autoreply." + name + "." + std::string(key.str());
        const Param* p = find(param);
        if (p == nullptr || std::holds_alternative<TableParam>(p->kind)) {
          error(line(key.source()), full, "unknown key");
          continue;
        }
        lines_[full] = line(value.source());
        load_value(*p, full, value, scratch);
      }
      lines_["autoreply." + name] = line(tbl->source());
      out_.config.autoreply_profiles.insert_or_assign(name, std::move(scratch.autoreply));
    }
  }

  static const Param* find(std::string_view key) {
    for (const Param& p : params()) {
      if (p.key == key) return &p;
    }
    return nullptr;
  }

  static bool known_section(std::string_view section) {
    for (const Param& p : params()) {
      if (p.key.size() > section.size() && p.key.substr(0, section.size()) == section &&
          p.key[section.size()] == '.')
        return true;
    }
    return false;
  }

  void load_value(const Param& p, const std::string& key, const toml::node& value) {
    load_value(p, key, value, out_.config);
  }

  void load_value(const Param& p, const std::string& key, const toml::node& value, Config& target) {
    const auto at = line(value.source());
    std::visit(
        [&](const auto& k) {
          using K = std::decay_t<decltype(k)>;
          if constexpr (std::is_same_v<K, IntParam>) {
            const auto v = value.value_exact<std::int64_t>();
            if (!v) return error(at, key, "expected an integer");
            if (*v < k.min || *v > k.max)
              return error(at, key, fmt::format("{} is out of bounds [{}, {}]", *v, k.min, k.max));
            k.field(target) = *v;
          } else if constexpr (std::is_same_v<K, BoolParam>) {
            const auto v = value.value_exact<bool>();
            if (!v) return error(at, key, "expected true or false");
            k.field(target) = *v;
          } else if constexpr (std::is_same_v<K, StringParam>) {
            const auto v = value.value_exact<std::string>();
            if (!v) return error(at, key, "expected a string");
            k.field(target) = *v;
          } else if constexpr (std::is_same_v<K, ListParam>) {
            auto list = strings(value);
            if (!list) return error(at, key, "expected an array of strings");
            k.field(target) = std::move(*list);
          } else {
            error(at, key, "expected a table");
          }
        },
        p.kind);
  }

  // A string, or an array of strings.
  static std::optional<std::vector<std::string>> strings(const toml::node& value, bool allow_single = false) {
    if (allow_single) {
      if (const auto s = value.value_exact<std::string>()) return std::vector<std::string>{*s};
    }
    const auto* arr = value.as_array();
    if (arr == nullptr) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& item : *arr) {
      const auto s = item.value_exact<std::string>();
      if (!s) return std::nullopt;
      out.push_back(*s);
    }
    return out;
  }

  void load_table(const Param& p, const toml::node& node) {
    const auto& tp = std::get<TableParam>(p.kind);
    const std::string section(p.key);
    lines_[section] = line(node.source());
    const auto* tbl = node.as_table();
    if (tbl == nullptr) return error(line(node.source()), section, "expected a table");
    for (auto&& [name, value] : *tbl) {
      const std::string key(name.str());
      const std::string full = section + "." + key;
      lines_[full] = line(name.source());
      if (tp.single) {
        const auto s = value.value_exact<std::string>();
        if (!s) {
          error(line(value.source()), full, "expected a string");
          continue;
        }
        tp.field(out_.config)[key] = {*s};
      } else {
        auto list = strings(value, true);
        if (!list) {
          error(line(value.source()), full, "expected a string or an array of strings");
          continue;
        }
        tp.field(out_.config)[key] = std::move(*list);
      }
    }
  }

  void resolve_files() {
    auto relative = [this](std::string& path) {
      if (!path.empty() && std::filesystem::path(path).is_relative())
        path = (base_ / path).lexically_normal().string();
    };
    relative(out_.config.dns.trust_anchor_file);
    relative(out_.config.dmarc.public_suffix_list);
    for (auto& [domain, keys] : out_.config.dkim.signing) {
      for (auto& k : keys) {  // "selector:path": only the path part is a file
        const auto colon = k.find(':');
        if (colon == std::string::npos) continue;
        std::string path = k.substr(colon + 1);
        relative(path);
        k = k.substr(0, colon + 1) + path;
      }
    }
    auto& d = out_.config.directory;
    if (!d.ldif_file.empty() && std::filesystem::path(d.ldif_file).is_relative())
      d.ldif_file = (base_ / d.ldif_file).lexically_normal().string();
    if (!d.ca_file.empty() && std::filesystem::path(d.ca_file).is_relative())
      d.ca_file = (base_ / d.ca_file).lexically_normal().string();
    if (d.bind_password_file.empty()) return;
    const auto at = lines_["directory.bind_password_file"];
    if (!d.bind_password.empty()) {
      return error(at, "directory.bind_password_file", "set bind_password or bind_password_file, not both");
    }
    std::filesystem::path file(d.bind_password_file);
    if (file.is_relative()) file = base_ / file;
    std::ifstream in(file);
    if (!in || !std::getline(in, d.bind_password)) {
      error(at, "directory.bind_password_file", "cannot read " + file.string());
    } else if (d.bind_password.empty()) {
      error(at, "directory.bind_password_file", file.string() + " starts with an empty line");
    }
  }

  std::string name_;
  std::filesystem::path base_;
  LoadedConfig out_;
  std::map<std::string, std::uint32_t> lines_;
  std::vector<std::pair<std::string, const toml::table*>> profiles_;  // [autoreply.NAME], read last
};

}  // namespace

LoadedConfig load_config_text(std::string_view text, const std::string& name,
                              const std::filesystem::path& base_dir) {
  return Loader(name, base_dir).load(text);
}

LoadedConfig load_config_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    LoadedConfig out{default_config(), {file.string() + ": cannot read configuration file"}};
    return out;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_config_text(text.str(), file.string(), file.parent_path());
}

std::string render_defaults() {
  std::string out = "# chainmail.conf: every parameter with its default (chainmail config defaults)\n";
  std::string section;
  for (const Param& p : params()) {
    const auto dot = p.key.find('.');
    const std::string sec(p.key.substr(0, dot));
    std::string help = "# " + std::string(p.help) + "\n";
    if (const auto* t = std::get_if<TableParam>(&p.kind)) {
      out += "\n" + help + "[" + std::string(p.key) + "]\n";
      if (!t->example.empty()) {
        out += "# " + std::string(t->example) + "\n";
      } else {
        out += t->single ? "# \"address\" = \"service\"\n"
                         : "# \"address\" or local_part = \"target\" or [\"t1\", \"t2\"]\n";
      }
      section.clear();
      continue;
    }
    if (sec != section) {
      out += "\n[" + sec + "]\n";
      section = sec;
    }
    std::string value;
    std::string bounds;
    std::visit(
        [&](const auto& k) {
          using K = std::decay_t<decltype(k)>;
          if constexpr (std::is_same_v<K, IntParam>) {
            value = std::to_string(k.def);
            bounds = fmt::format(" [{}..{}]", k.min, k.max);
          } else if constexpr (std::is_same_v<K, BoolParam>) {
            value = k.def ? "true" : "false";
          } else if constexpr (std::is_same_v<K, StringParam>) {
            value = quote(k.def);
          } else if constexpr (std::is_same_v<K, ListParam>) {
            value = "[";
            for (std::size_t i = 0; i < k.def.size(); ++i) value += (i != 0 ? ", " : "") + quote(k.def[i]);
            value += "]";
          }
        },
        p.kind);
    out += "# " + std::string(p.help) + bounds + "\n" + std::string(p.key.substr(dot + 1)) + " = " + value +
           "\n";
  }
  return out;
}

}  // namespace chainmail
