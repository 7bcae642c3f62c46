// lookup.h - the three outcomes of every lookup chainmail makes.
//
// A lookup is found, not found, or trouble. Trouble is never read as "not found": a directory that is down
// must make mail wait (4xx, exit 75, TEMP), never bounce it. Trouble says whether waiting can help
// (temporary) or an operator must act (configuration).
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace chainmail {

struct Trouble {
  enum class Kind { temporary, configuration };
  Kind kind = Kind::temporary;
  std::string reason;

  static Trouble temporary(std::string why) { return {Kind::temporary, std::move(why)}; }
  static Trouble configuration(std::string why) { return {Kind::configuration, std::move(why)}; }
};

enum class LookupStatus { found, not_found, trouble };

template <typename T>
class Lookup {
 public:
  static Lookup found(T value) { return Lookup(LookupStatus::found, std::move(value), {}); }
  static Lookup not_found() { return Lookup(LookupStatus::not_found, std::nullopt, {}); }
  static Lookup trouble(Trouble why) { return Lookup(LookupStatus::trouble, std::nullopt, std::move(why)); }

  LookupStatus status() const { return status_; }
  bool is_found() const { return status_ == LookupStatus::found; }
  bool is_not_found() const { return status_ == LookupStatus::not_found; }
  bool is_trouble() const { return status_ == LookupStatus::trouble; }
  const T& value() const { return *value_; }
  T take() { return std::move(*value_); }  // moves the value out (for move-only values)
  const Trouble& trouble_info() const { return trouble_; }

 private:
  Lookup(LookupStatus s, std::optional<T> v, Trouble t)
      : status_(s), value_(std::move(v)), trouble_(std::move(t)) {}
  LookupStatus status_;
  std::optional<T> value_;
  Trouble trouble_;
};

}  // namespace chainmail
