// dmarc_input.cc - see dmarc_input.h.
#include "cli/dmarc_input.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <thread>

#include "adapters/mime/report_parts.h"
#include "adapters/unique_fd.h"
#include "cli/report_message.h"

namespace chainmail {
namespace {

namespace fs = std::filesystem;

// A file's bytes: not a std::string, whose resize() would write every byte (and so take every page fault)
// before read(2) writes them again.
struct FileBytes {
  std::unique_ptr<char[]> bytes;
  std::size_t size = 0;
  std::string_view view() const { return {bytes.get(), size}; }
};

// Bytes [from, from + n) of the file into `to`; the reason when they could not all be read, else "".
std::string read_range(int fd, char* to, std::size_t n, std::size_t from) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, to + got, n - got, static_cast<off_t>(from + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return std::strerror(errno);
    if (r == 0) return "short read";  // the file shrank under us
    got += static_cast<std::size_t>(r);
  }
  return {};
}

// Opens a regular file of at most `max` bytes; false with a reason otherwise. O_NONBLOCK: a FIFO is refused,
// not waited on.
bool open_file(const fs::path& file, std::size_t max, UniqueFd& fd, std::size_t& size, std::string& why) {
  fd = UniqueFd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) {
    why = std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    why = std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    why = "not a regular file";
    return false;
  }
  size = static_cast<std::size_t>(st.st_size);
  if (size > max) {
    why = "larger than " + std::to_string(max) + " bytes";
    return false;
  }
  return true;
}

// Reads the whole file: pread(2) into a buffer that is not zeroed first, no iostream: one copy from the page
// cache. A large file is read as two halves at once, the second by the helper thread: the time goes into
// page faults on the fresh buffer (about 2 us per 4 KiB page on a virtual machine), which two threads take
// in parallel. The helper is first woken (prepare()), and stays ready for the parse that follows.
bool read_whole(int fd, std::size_t size, HelperThread& helper, FileBytes& out, std::string& why) {
  out.bytes = std::make_unique_for_overwrite<char[]>(std::max<std::size_t>(size, 1));
  out.size = size;
  char* const to = out.bytes.get();
  if (size < kReportSplitMinBytes) {
    why = read_range(fd, to, size, 0);
    return why.empty();
  }
  helper.prepare();
  const std::size_t half = size / 2;
  std::string second_why;
  helper.run_both([&] { why = read_range(fd, to, half, 0); },
                  [&] { second_why = read_range(fd, to + half, size - half, half); });
  if (why.empty()) why = std::move(second_why);
  return why.empty();
}

// Without a second thread, no RunBoth: core then reads a large report through once, with one parser, instead
// of its two halves in turn.
RunBoth on(HelperThread& helper) {
  if (!helper.wanted()) return {};
  return [&helper](const std::function<void()>& first, const std::function<void()>& second) {
    helper.run_both(first, second);
  };
}

// Parses one report document (raw, gzip or zip bytes) into `into`; returns the reason on failure. A report
// of at least min_split bytes is read as two halves at once (core/dmarc_report.h), the second on the helper
// thread.
std::string decode_document(std::string_view data, const ReportReadLimits& limits, HelperThread& helper,
                            std::size_t min_split, DecodedFile& into) {
  std::optional<std::string> extracted;
  std::string_view xml = data;
  if (detect_report_encoding(data) == ReportEncoding::Plain) {
    // Parsed where it lies: extract_report() would copy it whole only to return it as is. Same limit.
    if (data.size() > limits.archive.max_bytes) return "report larger than the limit";
  } else {
    auto result = extract_report(data, limits.archive);
    if (!result.ok()) return result.error;
    extracted = std::move(result.xml);
    xml = *extracted;
  }
  // A document that will be parsed serially has no work for the helper, which has been spinning since the
  // read (read_whole()'s prepare()): let it sleep rather than spin through the parse.
  if (xml.size() < std::max(min_split, kReportSplitMinBytes) || xml.size() > kReportSplitMaxBytes)
    helper.relax();
  std::optional<SourceTally> tally;
  if (limits.tally_sources) tally.emplace();
  auto parsed =
      parse_aggregate_report(xml, limits.parse, on(helper), min_split, nullptr, tally ? &*tally : nullptr);
  if (!parsed.ok()) return parsed.error;
  into.reports.push_back(std::move(*parsed.report));
  if (tally) into.tallies.push_back(std::move(*tally));
  return {};
}

// An XML document (a byte order mark and white space allowed before its first '<'); a mail message never
// starts with '<', so the parser's own reason is the one worth showing.
bool looks_like_xml(std::string_view data) {
  if (data.starts_with("\xEF\xBB\xBF")) data.remove_prefix(3);
  const auto first = data.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && data[first] == '<';
}

DecodedFile decode_file(std::string_view data, const ReportReadLimits& limits, HelperThread& helper,
                        std::size_t min_split) {
  DecodedFile out;
  if (detect_report_encoding(data) != ReportEncoding::Plain || looks_like_aggregate_report(data) ||
      looks_like_xml(data)) {
    if (auto e = decode_document(data, limits, helper, min_split, out); !e.empty())
      out.errors.push_back(std::move(e));
    return out;
  }
  ClassifiedMessage classified;
  if (std::string why; !classify_message(data, classified, why)) {
    out.errors.push_back(std::move(why));
    return out;
  }
  if (classified.kind != ReportKind::Aggregate) {
    out.errors.push_back("not an aggregate report (" + std::string(report_kind_name(classified.kind)) + ": " +
                         classified.why + ")");
    return out;
  }
  for (const auto& part : classified.reports) {
    if (auto e = decode_document(part.data, limits, helper, min_split, out); !e.empty())
      out.errors.push_back((part.filename.empty() ? std::string("report part") : part.filename) + ": " + e);
  }
  return out;
}

// A large plain report parsed straight from the file (core's parse_aggregate_report_at()): as two halves at
// once with a second thread, else read through by one parser; never read into one buffer: on a virtual
// machine the fresh pages of that buffer (256 for a 1 MB report) cost more than reading the bytes. Core cuts
// only a document whose root start tag is in its first bytes and is <feedback>, which decode_file() would
// take, bytes in memory, for a plain report (no gzip or zip magic, looks like an aggregate report): the same
// path, and the same result. nullopt when it was not parsed that way; min_split then says whether the whole
// file is still worth cutting (not after it was read that way and failed: it would fail again, and only the
// serial parse's verdict is wanted).
std::optional<DecodedFile> decode_from_file(int fd, std::size_t size, const ReportReadLimits& limits,
                                            HelperThread& helper, std::size_t& min_split) {
  if (size < kReportSplitMinBytes || size > kReportSplitMaxBytes || size > limits.archive.max_bytes)
    return std::nullopt;
  helper.prepare();
  const ReadAt read_at = [fd](std::size_t offset, std::span<char> to) {
    return read_range(fd, to.data(), to.size(), offset).empty();
  };
  ReportSplit path = ReportSplit::none;
  std::optional<SourceTally> tally;
  if (limits.tally_sources) tally.emplace();
  auto parsed = parse_aggregate_report_at(size, read_at, limits.parse, on(helper), kReportSplitMinBytes,
                                          &path, tally ? &*tally : nullptr);
  if (!parsed) {
    if (path == ReportSplit::fell_back) min_split = SIZE_MAX;
    return std::nullopt;
  }
  DecodedFile out;
  if (parsed->ok()) {
    out.reports.push_back(std::move(*parsed->report));
    if (tally) out.tallies.push_back(std::move(*tally));
  } else {
    out.errors.push_back(std::move(parsed->error));
  }
  return out;
}

void walk(const fs::path& path, const ReportReadLimits& limits, HelperThread& helper,
          const ReportSink& report, const BadSink& bad, ReportWalkStats& stats) {
  UniqueFd fd;
  std::size_t size = 0;
  std::string why;
  std::size_t min_split = kReportSplitMinBytes;
  auto decoded = open_file(path, limits.max_file_bytes, fd, size, why)
                     ? decode_from_file(fd.get(), size, limits, helper, min_split)
                     : std::nullopt;
  if (!decoded && why.empty()) {
    FileBytes data;
    if (read_whole(fd.get(), size, helper, data, why))
      decoded = decode_file(data.view(), limits, helper, min_split);
  }
  helper.relax();
  if (!decoded) {
    ++stats.bad;
    bad(path, why);
    return;
  }
  ++stats.files;
  stats.bytes += size;
  if (decoded->reports.empty()) {
    ++stats.bad;
    bad(path, decoded->errors.empty() ? std::string("no aggregate report") : decoded->errors.front());
    return;
  }
  for (const auto& e : decoded->errors) {
    ++stats.bad;
    bad(path, e);
  }
  for (std::size_t i = 0; i < decoded->reports.size(); ++i) {
    ++stats.reports;
    report(path, decoded->reports[i], i < decoded->tallies.size() ? &decoded->tallies[i] : nullptr);
  }
}

}  // namespace

DecodedFile decode_report_file(std::string_view data, const ReportReadLimits& limits) {
  HelperThread helper;
  return decode_report_file(data, limits, helper);
}

DecodedFile decode_report_file(std::string_view data, const ReportReadLimits& limits, HelperThread& helper) {
  return decode_file(data, limits, helper, kReportSplitMinBytes);
}

ReportWalkStats for_each_report(const std::vector<fs::path>& paths, const ReportReadLimits& limits,
                                const ReportSink& report, const BadSink& bad) {
  HelperThread helper;
  return for_each_report(paths, limits, report, bad, helper);
}

ReportWalkStats for_each_report(const std::vector<fs::path>& paths, const ReportReadLimits& limits,
                                const ReportSink& report, const BadSink& bad, HelperThread& helper) {
  ReportWalkStats stats;
  for (const auto& path : paths) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      ++stats.bad;
      bad(path, ec ? ec.message() : "no such file or directory");
      continue;
    }
    if (!fs::is_directory(status)) {
      walk(path, limits, helper, report, bad, stats);
      continue;
    }
    // Names only (not reports) are collected, so that the order, and with it the output, is stable.
    std::vector<fs::path> files;
    fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code type_ec;
      if (it->is_regular_file(type_ec) && !it->is_symlink(type_ec)) files.push_back(it->path());
    }
    if (ec) {
      ++stats.bad;
      bad(path, ec.message());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) walk(f, limits, helper, report, bad, stats);
  }
  return stats;
}

namespace {

// What the lookup threads share with the caller; a thread that outlives the timeout still has it.
struct RdnsState {
  std::mutex mutex;
  std::condition_variable done;
  std::map<std::string, std::string> results;
};

std::string lookup_ptr(const std::string& address) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    len = sizeof(sockaddr_in6);
  } else {
    return "? (not an IP address)";
  }
  std::string host(NI_MAXHOST, '\0');
  const int rc = getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host.data(),
                             static_cast<socklen_t>(host.size()), nullptr, 0, NI_NAMEREQD);
  if (rc == 0) {
    host.resize(std::strlen(host.c_str()));
    return host;
  }
  if (rc == EAI_NONAME) return "-";
  return std::string("? (") + gai_strerror(rc) + ")";
}

}  // namespace

void reverse_dns(const std::vector<std::string>& addresses, std::chrono::milliseconds timeout,
                 std::size_t parallel, std::map<std::string, std::string>& cache) {
  std::vector<std::string> todo;
  for (const auto& a : addresses)
    if (!cache.contains(a) && std::find(todo.begin(), todo.end(), a) == todo.end()) todo.push_back(a);
  parallel = std::max<std::size_t>(parallel, 1);
  for (std::size_t first = 0; first < todo.size(); first += parallel) {
    const std::size_t last = std::min(todo.size(), first + parallel);
    auto state = std::make_shared<RdnsState>();
    for (std::size_t i = first; i < last; ++i) {
      // Detached: getnameinfo cannot be cancelled, and a stuck one must not hold the command up.
      std::thread([state, address = todo[i]]() noexcept {
        std::string name;
        try {
          name = lookup_ptr(address);
        } catch (...) {
          name = "? (lookup failed)";
        }
        const std::lock_guard lock(state->mutex);
        state->results.emplace(address, std::move(name));
        state->done.notify_all();
      }).detach();
    }
    std::unique_lock lock(state->mutex);
    state->done.wait_for(lock, timeout, [&] { return state->results.size() == last - first; });
    for (std::size_t i = first; i < last; ++i) {
      const auto found = state->results.find(todo[i]);
      cache[todo[i]] = found != state->results.end() ? found->second : "? (timeout)";
    }
  }
}

}  // namespace chainmail
