// opendkim_compat.h - the one place C++ includes libopendkim's <opendkim/dkim.h> (2.11.0~beta2, Debian 12).
//
// dkim.h is C99: its prototypes use _Bool, which C++ does not have, and it expects u_char and friends from
// <sys/types.h>. _Bool is mapped to bool (same size and ABI on every platform GCC supports) for the include
// only, so nothing else in the program sees the macro. Include this header from .cc files only; the public
// adapter header (dkim.h beside it) never exposes libopendkim types.
#pragma once

#include <sys/types.h>

#define _Bool bool  // NOLINT(bugprone-reserved-identifier): the C99 keyword dkim.h uses
#include <opendkim/dkim.h>
#undef _Bool
