// helper_thread.cc - see helper_thread.h.
#include "cli/helper_thread.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <thread>
#include <utility>

namespace chainmail {
namespace {

// How long either side spins before it sleeps. Longer than the two halves of a report (up to 8 MiB) ever
// differ, and than reading such a file from the page cache; a disk read or a very unequal cut outlasts it,
// and then the wait is a plain sleep, only slower to wake from.
constexpr auto kSpinLimit = std::chrono::milliseconds(20);

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spins until done() or kSpinLimit; returns done(). Every 1024 turns (tens of microseconds) it yields the
// CPU, in case the scheduler put both threads on one CPU (a new thread's first placement can do that): a
// spinner must not take the time of the thread it waits for. Not more often: each yield is a system call,
// and at every 64 turns they were a fifth of the spinning thread's time. The clock is read every 256 turns
// (a vDSO call is dearer than a pause).
template <typename Done>
bool spin_until(const Done& done) noexcept {
  const auto deadline = std::chrono::steady_clock::now() + kSpinLimit;
  for (unsigned turn = 1;; ++turn) {
    if (done()) return true;
    cpu_relax();
    if (turn % 1024 == 0) std::this_thread::yield();
    if (turn % 256 == 0 && std::chrono::steady_clock::now() >= deadline) return done();
  }
}

// Asked once (it reads /sys), and only when a thread is wanted.
bool one_cpu() noexcept {
  static const bool one = std::thread::hardware_concurrency() <= 1;
  return one;
}

}  // namespace

// What the caller and the helper share. The thread holds it too, so that the HelperThread can go without
// waiting for the thread to end.
struct HelperThread::Shared {
  std::atomic<std::uint32_t> posted{0};    // bumped by the caller: a task, a wake-up (prepare) or stop
  std::atomic<std::uint32_t> finished{0};  // bumped by the helper after each task
  std::atomic<const std::function<void()>*> task{nullptr};
  std::atomic<bool> expecting{false};  // between prepare() and relax(): spin, do not sleep
  std::atomic<bool> stop{false};
  std::exception_ptr error;  // the task's exception; written before `finished` is bumped, read after
};

HelperThread::HelperThread(bool wanted)
    : shared_(std::make_shared<Shared>()), unavailable_(!wanted || one_cpu()) {}

HelperThread::~HelperThread() {
  if (!started_) return;
  shared_->stop.store(true, std::memory_order_release);
  shared_->posted.fetch_add(1, std::memory_order_release);
  shared_->posted.notify_one();
}

bool HelperThread::start() noexcept {
  if (started_ || unavailable_) return started_;
  try {
    // Detached: the destructor only asks it to stop (see the header).
    std::thread([shared = shared_, seen = shared_->posted.load(std::memory_order_relaxed)] {
      helper_main(shared, seen);
    }).detach();
    started_ = true;
  } catch (...) {  // no thread to be had (std::system_error, or no memory): run_both() runs serially
    unavailable_ = true;
  }
  return started_;
}

bool HelperThread::parallel() noexcept {
  return start();
}

void HelperThread::prepare() noexcept {
  shared_->expecting.store(true, std::memory_order_relaxed);
  if (!start()) return;
  shared_->posted.fetch_add(1, std::memory_order_release);
  shared_->posted.notify_one();
}

void HelperThread::relax() noexcept {
  shared_->expecting.store(false, std::memory_order_relaxed);
}

void HelperThread::run_both(const std::function<void()>& first, const std::function<void()>& second) {
  if (!start()) {
    first();
    second();
    return;
  }
  Shared& s = *shared_;
  const std::uint32_t before = s.finished.load(std::memory_order_relaxed);
  s.task.store(&second, std::memory_order_release);
  s.posted.fetch_add(1, std::memory_order_release);
  s.posted.notify_one();

  std::exception_ptr ours;
  try {
    first();
  } catch (...) {
    ours = std::current_exception();
  }
  // If the helper has not even taken `second` yet (a new thread's first run can come late), it is run here:
  // that ends no later than waiting for the helper to start it would.
  if (s.task.exchange(nullptr, std::memory_order_acq_rel) != nullptr) {
    if (ours) std::rethrow_exception(ours);
    second();
    return;
  }
  // `second` lives in the caller's frame: whatever happened here, wait until the helper is done with it.
  const auto done = [&] { return s.finished.load(std::memory_order_acquire) != before; };
  if (!spin_until(done)) {
    while (!done()) s.finished.wait(before, std::memory_order_acquire);
  }
  if (auto theirs = std::exchange(s.error, nullptr)) std::rethrow_exception(theirs);
  if (ours) std::rethrow_exception(ours);
}

void HelperThread::helper_main(const std::shared_ptr<Shared>& shared, std::uint32_t seen) noexcept {
  Shared& s = *shared;
  for (;;) {
    if (s.expecting.load(std::memory_order_relaxed)) {
      spin_until([&] {
        return s.posted.load(std::memory_order_acquire) != seen ||
               !s.expecting.load(std::memory_order_relaxed);
      });
    }
    s.posted.wait(seen, std::memory_order_acquire);  // returns at once when something was posted
    seen = s.posted.load(std::memory_order_acquire);
    if (s.stop.load(std::memory_order_acquire)) return;
    // A task posted just after a wake-up can be found on either turn; it is taken exactly once.
    if (const auto* task = s.task.exchange(nullptr, std::memory_order_acq_rel)) {
      try {
        (*task)();
      } catch (...) {
        s.error = std::current_exception();
      }
      s.finished.fetch_add(1, std::memory_order_release);
      s.finished.notify_one();
    }
  }
}

}  // namespace chainmail
