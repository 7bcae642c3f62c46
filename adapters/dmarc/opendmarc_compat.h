// opendmarc_compat.h - the one place C++ includes libopendmarc's <opendmarc/dmarc.h> (1.4.2, Debian 12).
//
// dmarc.h is C with its own extern "C" block and compiles as C++ as it is. Its functions take u_char* for
// strings they only read (they copy what they keep); as_uchar() gives them a std::string's buffer.
//
// opendmarc_get_tld() - the organizational domain libopendmarc itself uses for relaxed alignment - is
// exported by libopendmarc.so.2 but declared only in the library's internal header (opendmarc_internal.h);
// it is declared here with that signature so record discovery and alignment use the same suffix table.
// It returns 0 and writes the organizational domain to `tld`, or leaves `tld` untouched (we pass it
// zeroed) when no rule matches. Include this header from .cc files only.
#pragma once

#include <opendmarc/dmarc.h>

#include <cstddef>
#include <string>

extern "C" int opendmarc_get_tld(u_char* domain, u_char* tld, std::size_t tld_len);

namespace chainmail::dmarc {

inline u_char* as_uchar(std::string& s) {
  return reinterpret_cast<u_char*>(s.data());
}

}  // namespace chainmail::dmarc
