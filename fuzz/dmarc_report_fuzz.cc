// dmarc_report_fuzz.cc - the DMARC report parser (core/dmarc_report.h) on any bytes. Besides what the
// sanitizers catch, every way of reading a document must agree with the serial parse, as the header
// promises: the split parse gives its result exactly; the document read piece by piece (in halves, or
// through by one parser) gives it too, or leaves the document to it (nullopt); with the records counted
// into a tally instead of kept, the verdict and error text are the same.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <span>
#include <string_view>

#include "core/dmarc_report.h"
#include "core/dmarc_summary.h"

namespace {

using namespace chainmail;  // NOLINT(google-build-using-namespace): one short function over the parser's API

void in_turn(const std::function<void()>& first, const std::function<void()>& second) {
  first();
  second();
}

// A broken promise is a crash, for the fuzzer to keep the input that caused it.
void expect(bool holds) {
  if (!holds) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  ReportParseLimits limits;
  limits.max_records = 1000;  // a cap met often, to check that it is met alike on every path
  const ReadAt read_at = [xml](std::size_t offset, std::span<char> to) {
    if (offset > xml.size() || to.size() > xml.size() - offset) return false;
    std::copy_n(xml.data() + offset, to.size(), to.data());
    return true;
  };

  const ReportParseResult serial = parse_aggregate_report(xml, limits);
  ReportSplit path = ReportSplit::none;
  expect(parse_aggregate_report(xml, limits, in_turn, 1, &path) == serial);
  for (const RunBoth& run : {RunBoth(in_turn), RunBoth()}) {  // in halves, then through by one parser
    const auto at = parse_aggregate_report_at(size, read_at, limits, run, 1, &path);
    expect(!at || *at == serial);
  }

  SourceTally tally;
  const ReportParseResult counted = parse_aggregate_report(xml, limits, &tally);
  expect(counted.ok() == serial.ok() && counted.error == serial.error);
  return 0;
}
