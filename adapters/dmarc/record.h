// record.h - DMARC policy records (RFC 7489 6.3, 6.4) read the way 6.6.3 says to treat them. Pure; used by
// dmarc.cc to select and check records before libopendmarc sees them, and tested on its own.
//
// is_dmarc_record(): does a TXT string start with the version tag "v=DMARC1" (the filter of 6.6.3 steps 2
// and 4)? WSP is allowed around '=' and before the ';'; the tag name and "DMARC1" compare case-insensitively
// as libopendmarc does.
//
// parse_record(): tags are split at ';', names compared case-insensitively, values trimmed of WSP; the first
// occurrence of a tag counts; unknown tags and parts without '=' are ignored. adkim/aspf other than r|s and
// pct other than 0..100 fall back to their defaults (r, r, 100). A missing or invalid p=, or an invalid sp=,
// is an error unless rua= holds a syntactically valid URI, in which case the record acts as p=none, sp=none
// (6.6.3 step 6). p/sp values must be spelled out (none, quarantine, reject; any case).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "adapters/dmarc/dmarc.h"

namespace chainmail::dmarc {

struct Record {
  Policy p = Policy::none;
  std::optional<Policy> sp;  // absent: p applies to subdomains too
  bool adkim_strict = false;
  bool aspf_strict = false;
  int pct = 100;
  bool p_replaced = false;  // p= (or sp=) was invalid and the record acts as p=none because of rua=

  // The record as handed to libopendmarc: only the tags evaluation uses, in canonical spelling.
  std::string canonical() const;
};

bool is_dmarc_record(std::string_view txt);

struct RecordParse {
  std::optional<Record> record;
  std::string error;  // when record is empty: what is wrong, without quoting the record
};
RecordParse parse_record(std::string_view txt);

}  // namespace chainmail::dmarc
