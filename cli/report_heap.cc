// report_heap.cc - see report_heap.h.
#include "cli/report_heap.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

namespace chainmail {

void set_up_report_malloc() noexcept {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  mallopt(M_ARENA_MAX, 1);
}

std::size_t map_heap_ahead(std::size_t expected_bytes) noexcept {
  if (expected_bytes == 0) return 0;
  // Allocated and freed at once: below the mmap threshold the block is cut from the top of the heap, and
  // freed it joins the top again, whose pages stay (below the trim threshold) for the allocations to come.
  void* block = std::malloc(expected_bytes);
  if (block == nullptr) return 0;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<std::uintptr_t>(block);
  const std::uintptr_t begin = (start + page - 1) & ~(page - 1);
  const std::uintptr_t end = (start + expected_bytes) & ~(page - 1);
  std::size_t mapped = 0;
  // NOLINTNEXTLINE(performance-no-int-to-ptr): the page-aligned part of the block, as madvise() needs it.
  if (end > begin && madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE) == 0) {
    mapped = end - begin;
    // Then each page is written once, in order (see the header). Volatile: stores into a block about to be
    // freed are otherwise dead, and the compiler may drop them.
    for (std::uintptr_t at = begin; at < end; at += page)
      *reinterpret_cast<volatile char*>(at) = 0;  // NOLINT(performance-no-int-to-ptr)
  }
  std::free(block);
  return mapped;
}

}  // namespace chainmail
