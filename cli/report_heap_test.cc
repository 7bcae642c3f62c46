// report_heap_test.cc - the heap mapped ahead: as many bytes as asked (whole pages), and allocations that
// fit in it take no page faults afterwards (with glibc's malloc; a sanitizer brings its own allocator).
#include "cli/report_heap.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <memory>
#include <string_view>
#include <system_error>
#include <vector>

namespace chainmail {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kGlibcMalloc = false;
#else
constexpr bool kGlibcMalloc = true;
#endif

// MADV_POPULATE_WRITE came with Linux 5.14.
bool kernel_can_populate() {
  utsname u{};
  if (uname(&u) != 0) return false;
  const std::string_view release(u.release);  // "6.1.0-13-amd64"
  int major = 0;
  int minor = 0;
  const auto dot = std::from_chars(release.data(), release.data() + release.size(), major);
  if (dot.ec != std::errc{} || dot.ptr == release.data() + release.size() || *dot.ptr != '.') return false;
  if (std::from_chars(dot.ptr + 1, release.data() + release.size(), minor).ec != std::errc{}) return false;
  return major > 5 || (major == 5 && minor >= 14);
}

long minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

TEST(ReportHeap, MapsNothingForNothing) {
  EXPECT_EQ(map_heap_ahead(0), 0U);
}

TEST(ReportHeap, MapsTheWholePagesOfWhatItIsAskedFor) {
  if (!kernel_can_populate()) GTEST_SKIP() << "kernel older than 5.14: nothing is mapped ahead";
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t asked = (1U << 20) + 100;
  set_up_report_malloc();
  const std::size_t mapped = map_heap_ahead(asked);
  EXPECT_LE(mapped, asked);
  EXPECT_GE(mapped, asked - 2 * page);  // the block's first and last partial pages are left out
  EXPECT_EQ(mapped % page, 0U);
}

// 2 MiB written in 1 KiB blocks, as a report's tally and rows are: 512 fresh pages without the heap mapped
// ahead (one fault each), none or nearly none with it.
TEST(ReportHeap, AllocationsThatFitTakeNoPageFaults) {
  if (!kernel_can_populate()) GTEST_SKIP() << "kernel older than 5.14: nothing is mapped ahead";
  if (!kGlibcMalloc) GTEST_SKIP() << "AddressSanitizer's allocator does not use the heap mapped ahead";
  set_up_report_malloc();  // else the free block at the heap's top is given back to the system
  ASSERT_GE(map_heap_ahead(4U << 20), (4U << 20) - 8192);
  std::vector<std::unique_ptr<char[]>> blocks;
  blocks.reserve(2048);
  const long before = minor_faults();
  for (int i = 0; i < 2048; ++i) {
    blocks.push_back(std::make_unique<char[]>(1024));
    std::memset(blocks.back().get(), 'x', 1024);
  }
  EXPECT_LT(minor_faults() - before, 32);
}

}  // namespace
}  // namespace chainmail
