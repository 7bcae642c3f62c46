// helper_thread.h - the second thread of `chainmail dmarc`: it reads half of a large file, then parses half
// of the report in it (core's RunBoth).
//
// One thread for the whole command, not one per report: a folder of large reports pays for one thread start.
// The command calls prepare() when it meets a file large enough to share out, so that the thread is started
// (or woken) at once; run_both() then hands it its halves, first of the read, then of the parse; relax()
// after the file lets it sleep again.
//
// Why it spins: on the virtual machines mail hosts run on, waking a thread that sleeps on an idle virtual CPU
// was measured at about a millisecond (the hypervisor must run the halted vCPU again), both for a new
// thread's first run and for the wake-up at join; that is a tenth of a 1 MB report's whole run. So each side
// waits for the other by spinning for a bounded time (kSpinLimit) before it sleeps: the helper from
// prepare() until relax() (or the limit), between its tasks, and the caller from finishing its own half
// until the helper has finished its. Outside those moments the helper sleeps (a futex wait), costing nothing.
//
// Without a second CPU, or when no thread can be started, run_both() runs both tasks on the caller's thread,
// one after the other.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace chainmail {

class HelperThread {
 public:
  // `wanted`: whether run_both() may use a second thread at all (`chainmail dmarc` asks its configuration,
  // dmarc_reports.parse_threads). Unwanted, or with one CPU, no thread is ever started.
  explicit HelperThread(bool wanted = true);
  // Tells the thread to stop and lets it end on its own: waiting for it to wake up only to exit would cost
  // the command the very wake-up latency this class avoids.
  ~HelperThread();
  HelperThread(const HelperThread&) = delete;
  HelperThread& operator=(const HelperThread&) = delete;

  // Work is coming: start the thread, or wake it, and have it spin (waiting for run_both()) until relax().
  void prepare() noexcept;
  // No more work for now: let the thread sleep once it is done with its task.
  void relax() noexcept;

  // Runs `first` here and `second` on the helper thread; returns when both have finished. When `first` is
  // done before the helper has taken `second`, `second` runs here too. An exception from either is rethrown
  // here once both have finished (`second`'s first); if `first` throws and `second` was not taken, `second`
  // does not run.
  void run_both(const std::function<void()>& first, const std::function<void()>& second);

  // Whether run_both() has a second thread (false with one CPU, or when none could be started).
  bool parallel() noexcept;
  // Whether run_both() would start a second thread: wanted, and a second CPU. Starts nothing.
  bool wanted() const noexcept { return !unavailable_; }

 private:
  struct Shared;
  bool start() noexcept;
  static void helper_main(const std::shared_ptr<Shared>& shared, std::uint32_t seen) noexcept;

  std::shared_ptr<Shared> shared_;
  bool started_ = false;
  bool unavailable_ = false;
};

}  // namespace chainmail
