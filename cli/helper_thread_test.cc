// helper_thread_test.cc - the helper thread: both tasks run (the second elsewhere when there are two CPUs and
// the helper takes it), exceptions come back after both ended, hand-overs in any order with prepare() and
// relax() run each task exactly once (whether the helper or the caller ends up running the second), and a
// relaxed helper sleeps instead of spinning.
#include "cli/helper_thread.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace chainmail {
namespace {

// Waits (up to 10 s) until `flag` is set: a first task that must not end before the helper took the second.
void await(const std::atomic<bool>& flag) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!flag && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
}

// CPU time of the whole process (every thread) so far.
std::chrono::microseconds process_cpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const auto us = [](const timeval& t) {
    return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec);
  };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

TEST(HelperThread, RunsBothTasksTheSecondOnAnotherThread) {
  HelperThread helper;
  std::thread::id first_on;
  std::thread::id second_on;
  std::atomic<bool> second_started{false};
  const bool two_cpus = std::thread::hardware_concurrency() > 1;
  helper.run_both(
      [&] {
        first_on = std::this_thread::get_id();
        if (two_cpus) await(second_started);  // else `second` is run here, after this
      },
      [&] {
        second_on = std::this_thread::get_id();
        second_started = true;
      });
  EXPECT_EQ(first_on, std::this_thread::get_id());
  if (two_cpus) {
    EXPECT_TRUE(helper.parallel());
    EXPECT_NE(second_on, std::this_thread::get_id());
    EXPECT_NE(second_on, std::thread::id());
  } else {
    EXPECT_FALSE(helper.parallel());
    EXPECT_EQ(second_on, std::this_thread::get_id());
  }
}

// Not wanted (dmarc_reports.parse_threads = 1): no thread, both tasks here, in order.
TEST(HelperThread, UnwantedRunsBothTasksHere) {
  HelperThread helper(false);
  EXPECT_FALSE(helper.wanted());
  helper.prepare();
  std::vector<std::thread::id> ran;
  helper.run_both([&] { ran.push_back(std::this_thread::get_id()); },
                  [&] { ran.push_back(std::this_thread::get_id()); });
  EXPECT_EQ(ran, (std::vector{std::this_thread::get_id(), std::this_thread::get_id()}));
  EXPECT_FALSE(helper.parallel());
  EXPECT_EQ(HelperThread().wanted(), std::thread::hardware_concurrency() > 1);
}

// Every hand-over, prepared or not, relaxed in between or not, runs each task exactly once and returns only
// after the second finished (its write is seen here, with no other synchronisation than run_both's).
TEST(HelperThread, ManyHandOversLoseNothing) {
  HelperThread helper;
  long firsts = 0;
  long seconds = 0;
  for (int i = 0; i < 2000; ++i) {
    if (i % 3 == 0) helper.prepare();
    if (i % 7 == 0) helper.relax();
    helper.run_both([&] { ++firsts; }, [&] { ++seconds; });
    ASSERT_EQ(seconds, i + 1);
  }
  EXPECT_EQ(firsts, 2000);
}

TEST(HelperThread, ExceptionsComeBackAfterBothFinished) {
  if (std::thread::hardware_concurrency() <= 1) GTEST_SKIP() << "one CPU: no helper thread";
  HelperThread helper;
  std::atomic<bool> second_started{false};
  std::atomic<bool> second_done{false};
  EXPECT_THROW(helper.run_both(
                   [&] {
                     await(second_started);
                     throw std::runtime_error("first");
                   },
                   [&] {
                     second_started = true;
                     std::this_thread::sleep_for(std::chrono::milliseconds(30));
                     second_done = true;
                   }),
               std::runtime_error);
  EXPECT_TRUE(second_done);  // it was waited for although the first task failed
  second_started = false;
  try {
    helper.run_both(
        [&] {
          await(second_started);
          throw std::runtime_error("first");
        },
        [&] {
          second_started = true;
          throw std::logic_error("second");
        });
    FAIL() << "no exception";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "second");
  }
  int here = 0;
  int there = 0;
  helper.run_both([&] { ++here; }, [&] { ++there; });  // still usable
  EXPECT_EQ(here + there, 2);
}

// A prepared helper spins (that is the point), but only until relax() or its bounded limit; a relaxed one
// sleeps. Measured as the process's CPU time over a quiet 300 ms: a spinning thread would use most of it.
TEST(HelperThread, SleepsWhenNotExpectingWork) {
  if (std::thread::hardware_concurrency() <= 1) GTEST_SKIP() << "one CPU: no helper thread";
  HelperThread helper;
  helper.run_both([] {}, [] {});  // started
  helper.prepare();
  helper.relax();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let it notice
  const auto relaxed_before = process_cpu();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_LT(process_cpu() - relaxed_before, std::chrono::milliseconds(50));

  helper.prepare();  // and never relaxed: the spin ends on its own
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto prepared_before = process_cpu();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_LT(process_cpu() - prepared_before, std::chrono::milliseconds(50));
}

TEST(HelperThread, GoesAwayWithoutWaitingForItsThread) {
  for (int i = 0; i < 50; ++i) {
    HelperThread helper;
    helper.prepare();
    int here = 0;
    int there = 0;
    helper.run_both([&] { ++here; }, [&] { ++there; });
    EXPECT_EQ(here + there, 2);
  }  // each destructor only asks its thread to stop; the test ends without hanging
}

}  // namespace
}  // namespace chainmail
