// spf_suite_test.cc - the RFC 7208 conformance suite (openspf.org, release 2014.04), one gtest per case.
//
// The suite is read at run time from where the project's shared test data lives (CHAINMAIL_SPF_SUITE, set by
// CMake); it is never copied into the tree. Each YAML document has `zonedata` (name -> records) and `tests`
// (case -> helo, host, mailfrom, result or list of allowed results, optional explanation). Zone data goes
// into a dns::StaticResolver the way the suite's own driver (pyspf's testspf.py) reads it:
//   - SPF records are also published as TXT, unless the name lists TXT records itself; "TXT: NONE" means the
//     name exists without TXT records.
//   - TIMEOUT makes queries for the name time out, for every type not listed before it.
//   - CNAME is resolved here, as a recursive resolver would: the alias gets its target's records; a CNAME
//   loop
//     is DNS trouble.
// An empty mailfrom is the suite's HELO-only case: check_mail_from() with the null reverse-path checks
// postmaster@helo. A given explanation must match; "DEFAULT" means ours, which is none.
//
// A case we cannot pass goes into kDeviations with the reason; it is skipped, and fails if it starts passing
// (so the table cannot go stale).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "adapters/dns/rdata.h"
#include "adapters/dns/static_resolver.h"
#include "adapters/spf/spf_checker.h"

namespace chainmail::spf {
namespace {

using dns::RrType;

// Case name -> why we do not pass it. Aim: empty.
const std::map<std::string, std::string>& deviations() {
  static const std::map<std::string, std::string> table = {};
  return table;
}

struct Case {
  std::string name;      // as in the suite
  std::string document;  // the document's description
  std::string helo, host, mailfrom;
  std::vector<std::string> results;
  std::string explanation;  // empty: not checked
  std::shared_ptr<dns::StaticResolver> zone;
  std::string load_error;  // the suite could not be read: the one case reports it
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

// ---- zone data --------------------------------------------------------------------------------------------

struct NameData {
  std::map<RrType, std::vector<std::string>> records;
  std::set<RrType> trouble;
  std::string cname;
};

const std::map<std::string, RrType>& rr_types() {
  static const std::map<std::string, RrType> types = {
      {"A", RrType::a},     {"AAAA", RrType::aaaa}, {"MX", RrType::mx},      {"PTR", RrType::ptr},
      {"TXT", RrType::txt}, {"SPF", RrType::spf},   {"CNAME", RrType::cname}};
  return types;
}

std::string lower(std::string s) {
  for (char& c : s) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string txt_rdata(const YAML::Node& value) {
  if (value.IsSequence()) {
    std::string rdata;  // one character-string per element; [] is a record with none at all
    for (const auto& part : value) rdata += dns::encode_txt(part.as<std::string>());
    return rdata;
  }
  return dns::encode_txt(value.as<std::string>());
}

std::string address_rdata(const std::string& text, int family) {
  unsigned char buf[16] = {};
  if (inet_pton(family, text.c_str(), buf) != 1)
    throw std::runtime_error("bad address in zone data: " + text);
  return std::string(reinterpret_cast<const char*>(buf), family == AF_INET ? 4 : 16);
}

NameData read_name(const YAML::Node& entries) {
  NameData data;
  bool generate_txt = true;
  std::vector<std::string> generated;
  std::set<RrType> listed;
  for (const auto& entry : entries) {
    if (entry.IsScalar()) {
      if (entry.as<std::string>() != "TIMEOUT")
        throw std::runtime_error("unknown zone entry " + entry.as<std::string>());
      for (const auto& [word, type] : rr_types()) {
        if (!listed.contains(type)) data.trouble.insert(type);
      }
      continue;
    }
    for (const auto& kv : entry) {
      const auto word = kv.first.as<std::string>();
      const auto found = rr_types().find(word);
      if (found == rr_types().end()) throw std::runtime_error("unknown record type " + word);
      const RrType type = found->second;
      const YAML::Node& value = kv.second;
      if (type == RrType::txt) generate_txt = false;
      if (value.IsScalar() && value.as<std::string>() == "NONE") continue;  // the name exists, the type not
      listed.insert(type);
      switch (type) {
        case RrType::a:
          data.records[type].push_back(address_rdata(value.as<std::string>(), AF_INET));
          break;
        case RrType::aaaa:
          data.records[type].push_back(address_rdata(value.as<std::string>(), AF_INET6));
          break;
        case RrType::mx:
          data.records[type].push_back(
              dns::encode_mx(value[0].as<std::uint16_t>(), value[1].as<std::string>()));
          break;
        case RrType::ptr:
          data.records[type].push_back(dns::encode_name(value.as<std::string>()));
          break;
        case RrType::cname:
          data.cname = lower(value.as<std::string>());
          break;
        case RrType::txt:
          data.records[type].push_back(txt_rdata(value));
          break;
        case RrType::spf:
          data.records[type].push_back(txt_rdata(value));
          generated.push_back(txt_rdata(value));
          break;
        default:
          break;
      }
    }
  }
  if (generate_txt) {
    for (auto& rdata : generated) data.records[RrType::txt].push_back(std::move(rdata));
  }
  return data;
}

std::shared_ptr<dns::StaticResolver> load_zone(const YAML::Node& zonedata) {
  std::map<std::string, NameData> names;
  if (zonedata) {
    for (const auto& kv : zonedata) names[lower(kv.first.as<std::string>())] = read_name(kv.second);
  }
  auto zone = std::make_shared<dns::StaticResolver>();
  for (const auto& [name, data] : names) {
    const NameData* target = &data;
    if (!data.cname.empty()) {
      std::set<std::string> seen = {name};
      std::string next = data.cname;
      target = nullptr;
      bool loop = false;
      while (true) {
        if (!seen.insert(next).second || seen.size() > 10) {
          loop = true;
          break;
        }
        const auto it = names.find(next);
        if (it == names.end()) break;  // dangling alias: NXDOMAIN
        if (it->second.cname.empty()) {
          target = &it->second;
          break;
        }
        next = it->second.cname;
      }
      if (loop) {
        for (const auto& [word, type] : rr_types()) zone->set_trouble(name, type);
        continue;
      }
      if (target == nullptr) continue;
    }
    zone->add_name(name);
    for (const auto& [type, records] : target->records) {
      for (const auto& r : records) zone->add(name, type, r);
    }
    for (const RrType type : target->trouble) zone->set_trouble(name, type);
    for (const RrType type : data.trouble) zone->set_trouble(name, type);
  }
  return zone;
}

// ---- cases ------------------------------------------------------------------------------------------------

std::vector<Case> load_cases() {
  std::vector<Case> cases;
  try {
    for (const auto& doc : YAML::LoadAllFromFile(CHAINMAIL_SPF_SUITE)) {
      const auto zone = load_zone(doc["zonedata"]);
      const std::string description = doc["description"] ? doc["description"].as<std::string>() : "";
      for (const auto& kv : doc["tests"]) {
        Case c;
        c.name = kv.first.as<std::string>();
        c.document = description;
        const YAML::Node& t = kv.second;
        c.helo = t["helo"].as<std::string>();
        c.host = t["host"].as<std::string>();
        c.mailfrom = t["mailfrom"] ? t["mailfrom"].as<std::string>() : "";
        if (t["result"].IsSequence()) {
          for (const auto& r : t["result"]) c.results.push_back(r.as<std::string>());
        } else {
          c.results.push_back(t["result"].as<std::string>());
        }
        if (t["explanation"]) c.explanation = t["explanation"].as<std::string>();
        c.zone = zone;
        cases.push_back(std::move(c));
      }
    }
  } catch (const std::exception& e) {
    Case c;
    c.name = "load";
    c.load_error = std::string(CHAINMAIL_SPF_SUITE) + ": " + e.what();
    cases.clear();
    cases.push_back(std::move(c));
  }
  return cases;
}

std::atomic<int> g_passed{0};
std::atomic<int> g_deviations{0};

class Rfc7208Suite : public ::testing::TestWithParam<Case> {
 protected:
  static void TearDownTestSuite() {
    std::printf("[ suite    ] RFC 7208 suite: %d passed, %d known deviations (listed in kDeviations)\n",
                g_passed.load(), g_deviations.load());
  }
};

TEST_P(Rfc7208Suite, Case) {
  const Case& c = GetParam();
  ASSERT_TRUE(c.load_error.empty()) << c.load_error;
  Options options;
  options.receiver = "receiver.example";
  const Checker checker(*c.zone, options);
  const Verdict v = checker.check_mail_from(c.host, c.helo, c.mailfrom);
  const std::string got(to_string(v.result));

  bool ok = std::find(c.results.begin(), c.results.end(), got) != c.results.end();
  std::string detail = "helo=" + c.helo + " host=" + c.host + " mailfrom=" + c.mailfrom + "\n  got " + got +
                       " (" + v.comment + ")";
  if (ok && !c.explanation.empty() && v.result == Result::fail) {
    const std::string want = c.explanation == "DEFAULT" ? "" : c.explanation;
    if (v.explanation != want) {
      ok = false;
      detail += "\n  explanation '" + v.explanation + "', want '" + want + "'";
    }
  }

  const auto deviation = deviations().find(c.name);
  if (deviation != deviations().end()) {
    EXPECT_FALSE(ok) << c.name << " now passes: remove it from the deviation table";
    ++g_deviations;
    GTEST_SKIP() << "known deviation: " << deviation->second;
  }
  if (ok) ++g_passed;
  EXPECT_TRUE(ok) << c.document << " / " << c.name << "\n  " << detail;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string name = info.param.name;
  for (char& ch : name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Rfc7208, Rfc7208Suite, ::testing::ValuesIn(load_cases()), case_name);

}  // namespace
}  // namespace chainmail::spf
