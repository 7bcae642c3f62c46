// resolver.h - the one DNS interface SPF, DKIM and DMARC all ask through.
//
// Production uses UnboundResolver (libunbound: one context, one cache shared by every milter thread); tests
// use StaticResolver (zone data held in memory) so the checks can be driven without a network. The three
// outcomes of core/lookup.h apply: an answer (found), a name or type that does not exist (nxdomain/nodata,
// which SPF counts as void lookups), or trouble (timeout, SERVFAIL, bogus DNSSEC), which callers turn into
// temperror, never into "no record".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chainmail::dns {

enum class RrType : std::uint16_t {
  a = 1,
  ns = 2,
  cname = 5,
  soa = 6,
  ptr = 12,
  mx = 15,
  txt = 16,
  aaaa = 28,
  spf = 99,
};

struct Answer {
  enum class Status { found, nodata, nxdomain, trouble };
  Status status = Status::trouble;
  // One entry per resource record of the queried type, in uncompressed wire format (RFC 1035 section 3.3):
  // A = 4 bytes, AAAA = 16, MX = 2-byte preference + name, PTR/NS/CNAME = name, TXT = character-strings.
  std::vector<std::string> records;
  bool secure = false;    // validated by DNSSEC
  std::string why;        // for trouble: what went wrong, for the log
  std::uint32_t ttl = 0;  // seconds the answer may be reused (min TTL of the records, or the SOA minimum for
                          // negative answers; 0 = do not cache)

  bool found() const { return status == Status::found; }
  bool trouble() const { return status == Status::trouble; }
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  // Thread-safe. Blocks at most the resolver's configured timeout; a timeout is trouble.
  virtual Answer resolve(std::string_view name, RrType type) = 0;
};

}  // namespace chainmail::dns
