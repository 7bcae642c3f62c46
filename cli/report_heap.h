// report_heap.h - how `chainmail dmarc` sets up glibc's malloc before it reads reports.
//
// The command's own work on a large report is small next to the page faults of the memory it fills: on the
// virtual machines mail hosts run on, each first touch of a fresh page traps to the hypervisor. Measured on
// this project's 2-CPU VM: 11-14 us per faulted page, 2.3 us per page mapped by one madvise(MADV_POPULATE_
// WRITE) call; a 1 MB report took about 380 faults, 210 of them in the heap (11.3 ms in all, where an empty
// program takes 1.9). So the heap the report will need is mapped in one call before the parse, and kept.
// A mapped page's first touch still traps on that VM (its hypervisor fills its own page tables lazily: 512
// mapped pages took 0.8-1.4 ms to touch, and 0.01 ms the second time, from either CPU), and those traps cost
// more when both of the parse's threads take them at once; so the mapped pages are also written once, in
// order, right away: 0.7-0.8 ms there, about 1.5 ms less in the parse, the rows and the output after it.
#pragma once

#include <cstddef>

namespace chainmail {

// Sets malloc up for one command reading reports, for the whole process. Call it before any other thread
// that allocates is started: a thread's arena is chosen at its first allocation.
// - blocks of up to 64 MiB come from the heap, and freed memory stays in it up to 128 MiB (M_MMAP_THRESHOLD,
//   M_TRIM_THRESHOLD): a folder is read one file at a time, each file (and libxml2's copy of it) up to
//   megabytes, and glibc would map and unmap every such buffer, faulting it in again for each file (a fifth
//   of the parse time). The heap stays as large as the largest report, bounded by the decompression cap.
// - one arena (M_ARENA_MAX): the helper thread that parses half of a large report allocates from the same
//   heap, mapped ahead, instead of starting an arena of its own page by page (about 50 faults of the 1 MB
//   report). Measured: no slower on 10,000 reports, where both threads allocate at once.
void set_up_report_malloc() noexcept;

// Grows the heap by `expected_bytes`, maps its pages at once and writes each of them once (allocated and
// freed: the pages stay in the heap, free, for the allocations to come). Returns how many bytes were mapped
// that way: 0 for 0, or when the kernel cannot (before Linux 5.14); then the pages are faulted in one by one
// as they are used, as without this call. Needs set_up_report_malloc() first, or the pages may be given back
// at once.
//
// `expected_bytes` is the caller's estimate (report_heap_bytes()), bounded by the caller. Memory mapped ahead
// and never used costs 2-5 us a page here and counts in the RSS.
std::size_t map_heap_ahead(std::size_t expected_bytes) noexcept;

// The heap `chainmail dmarc` needs for a report of `report_bytes` (before decompression): 3/4 of its size.
// What fills it: the tally of its records by source (kept as the summary's), libxml2's buffers and the read
// block while it is parsed; then the rows that point into the summary, and the output. Measured on the 1 MB
// report (1,670 sources): 690 KB in use at the peak, while the output is written (361 KB of tally, 129 KB of
// output, 94 KB of rows, libstdc++'s 71 KB exception pool).
constexpr std::size_t report_heap_bytes(std::size_t report_bytes) {
  return report_bytes / 4 * 3;
}

}  // namespace chainmail
