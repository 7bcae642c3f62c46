// null_milter.cc - a libmilter filter that does nothing: the protocol floor of bench/milter.
//
//   null_milter SOCKET        (libmilter syntax: unix:/path/sock or inet:PORT@127.0.0.1)
//
// Registers no callbacks, so libmilter answers every event with SMFIR_CONTINUE itself; what a real milter
// costs beyond this is its own work. Runs in the foreground until SIGTERM or SIGINT (libmilter's own
// handling). DIAGNOSTICS: exit 1 when the socket cannot be set up (libmilter says why on stderr), 2 for bad
// arguments.
#include <libmilter/mfapi.h>
#include <sys/stat.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fputs("usage: null_milter unix:PATH|inet:PORT@HOST\n", stderr);
    return 2;
  }
  smfiDesc desc{};
  desc.xxfi_name = const_cast<char*>("null_milter");
  desc.xxfi_version = SMFI_VERSION;
  ::umask(0);  // the driver may run as another user than the daemon
  if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(desc) == MI_FAILURE ||
      smfi_opensocket(1) == MI_FAILURE) {
    std::fprintf(stderr, "null_milter: cannot listen on %s\n", argv[1]);
    return 1;
  }
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
