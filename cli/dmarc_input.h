// dmarc_input.h - where `chainmail dmarc` gets its reports: files, directories and Maildir folders, one
// file at a time.
//
// for_each_report() walks the paths it is given (directories recursively, in name order; a Maildir folder's
// cur/ and new/ are plain directories to it) and decides what each file is from its bytes, never its name:
// gzip or zip magic -> the archived report; an XML document with a <feedback> root -> the report; anything
// else is read as a mail message (an .eml or a Maildir message file) and every aggregate report part in it
// is taken. Each report is parsed and handed to the callback, then dropped: at most one file and its
// reports are in memory at a time.
//
// SECURITY: the files are attacker data (report senders wrote them). A file larger than max_file_bytes is
// refused unread; decompression and parsing are capped by ArchiveLimits and ReportParseLimits. Symbolic
// links inside directories are not followed.
//
// DIAGNOSTICS: every file that yields no report, and every report part that does not parse, goes to the
// `bad` callback with the file and a short reason (attacker-influenced: the callback must escape it).
//
// reverse_dns() looks names up with getnameinfo(3), each in its own thread so that a stuck lookup costs
// at most the timeout; results are cached per address by the caller's map.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "adapters/mime/report_archive.h"
#include "cli/helper_thread.h"
#include "core/dmarc_report.h"
#include "core/dmarc_summary.h"

namespace chainmail {

struct ReportReadLimits {
  std::size_t max_file_bytes = std::size_t{32} << 20U;
  ArchiveLimits archive;
  ReportParseLimits parse;
  // Each report's records are counted into a SourceTally as they are parsed (a large report's halves on
  // both threads), not kept: the reports come with empty records and their tally (what DmarcSummary needs).
  bool tally_sources = false;
};

struct ReportWalkStats {
  std::uint64_t files = 0;    // regular files read
  std::uint64_t reports = 0;  // reports parsed
  std::uint64_t bad = 0;      // calls to `bad`
  std::uint64_t bytes = 0;    // bytes of the files read
};

// `tally` is the report's records, counted, with ReportReadLimits::tally_sources (else null): the callee may
// move from it.
using ReportSink =
    std::function<void(const std::filesystem::path& file, const AggregateReport& report, SourceTally* tally)>;
using BadSink = std::function<void(const std::filesystem::path& file, const std::string& reason)>;

ReportWalkStats for_each_report(const std::vector<std::filesystem::path>& paths,
                                const ReportReadLimits& limits, const ReportSink& report, const BadSink& bad);
// The same with the caller's helper thread (the one above keeps its own): a caller that knows a large report
// is coming can prepare() it before its own setup, so that the thread runs by the time the report is read.
ReportWalkStats for_each_report(const std::vector<std::filesystem::path>& paths,
                                const ReportReadLimits& limits, const ReportSink& report, const BadSink& bad,
                                HelperThread& helper);

// The reports in one file's bytes (already read), or the reason there is none. A message may hold several.
struct DecodedFile {
  std::vector<AggregateReport> reports;
  std::vector<SourceTally> tallies;  // one per report, with ReportReadLimits::tally_sources
  std::vector<std::string> errors;   // one per part that failed; the file is bad when reports is empty
};
// A large report is read as two halves at once, the second on `helper` (for_each_report() keeps one for the
// whole walk); the first overload starts a thread of its own when it needs one.
DecodedFile decode_report_file(std::string_view data, const ReportReadLimits& limits);
DecodedFile decode_report_file(std::string_view data, const ReportReadLimits& limits, HelperThread& helper);

// Reverse DNS of each address, at most `parallel` lookups at a time, each bounded by `timeout`. Found: the
// name; no name: "-"; trouble (timeout, temporary failure): "?" and a reason in parentheses. Addresses
// already in `cache` are not looked up again.
void reverse_dns(const std::vector<std::string>& addresses, std::chrono::milliseconds timeout,
                 std::size_t parallel, std::map<std::string, std::string>& cache);

}  // namespace chainmail
