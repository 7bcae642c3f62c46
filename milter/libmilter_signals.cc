// libmilter_signals.cc - keeps libmilter's signal thread from taking the daemon's signals.
//
// smfi_main() starts a thread that sigwait()s for SIGHUP, SIGTERM and SIGINT and stops the milter on any of
// them. chainmail-milter handles those signals itself (SIGHUP reloads, see main.cc), but a process-directed
// signal goes to whichever thread the kernel picks among those that do not block it, and a thread inside
// sigwait() counts as one that does not. The kernel prefers the main thread, yet not always: while the main
// thread has a signal pending (two signals in quick succession) or has signals blocked (the sanitizer
// runtime blocks them around pthread_create), libmilter's thread can get the signal, and then a SIGHUP stops
// the milter and a SIGTERM leaves the main thread waiting forever. This was seen in CI.
//
// libmilter calls sigwait() through its PLT and nothing else in this program does, so this definition in
// the executable takes the place of libc's for it: the thread parks here for good with every signal
// blocked and libmilter never learns of a signal. libmilter detaches the thread and never joins it.
#include <signal.h>

extern "C" int sigwait(const sigset_t* /*set*/, int* /*sig*/) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, nullptr);
  while (true) sigsuspend(&all);  // SIGKILL and SIGSTOP still act; nothing else wakes it
}
