// read_ahead_test.cc - ReadAhead gives exactly the kernel's bytes, end of file and errors, with fewer reads.
#include "milter/read_ahead.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace chainmail::milter {
namespace {

// A scripted kernel: each call returns the next chunk (at most `count` bytes of it; the rest stays for the
// next call), then end of file, or -1 with errno when a chunk is marked as an error.
struct Script {
  explicit Script(std::vector<std::string> c, int fail_at = -1) : chunks(std::move(c)), error_at(fail_at) {}
  std::vector<std::string> chunks;
  std::size_t next = 0;
  int calls = 0;
  std::vector<std::size_t> asked;
  int error_at;  // call index that fails with ECONNRESET
};
Script* script = nullptr;

ssize_t fake_read(int /*fd*/, void* buf, std::size_t count) {
  const int call = script->calls++;
  script->asked.push_back(count);
  if (call == script->error_at) {
    errno = ECONNRESET;
    return -1;
  }
  if (script->next == script->chunks.size()) return 0;
  std::string& chunk = script->chunks[script->next];
  const std::size_t n = std::min(count, chunk.size());
  std::memcpy(buf, chunk.data(), n);
  chunk.erase(0, n);
  if (chunk.empty()) ++script->next;
  return static_cast<ssize_t>(n);
}

std::string read_n(ReadAhead& ra, std::size_t n) {
  std::string out(n, '\0');
  const ssize_t got = ra.read(3, out.data(), n, fake_read);
  out.resize(got < 0 ? 0 : static_cast<std::size_t>(got));
  return out;
}

TEST(ReadAhead, ManySmallReadsFromOneKernelRead) {
  Script s({"hdr01hdr02body-of-command"});
  script = &s;
  ReadAhead ra(64);
  EXPECT_FALSE(ra.buffered());
  EXPECT_EQ(read_n(ra, 5), "hdr01");
  EXPECT_TRUE(ra.buffered());
  EXPECT_EQ(read_n(ra, 5), "hdr02");
  EXPECT_EQ(read_n(ra, 100), "body-of-command");  // what is buffered, no second kernel read
  EXPECT_FALSE(ra.buffered());
  EXPECT_EQ(s.calls, 1);
  EXPECT_EQ(s.asked.at(0), 64U);
  EXPECT_EQ(read_n(ra, 5), "");  // end of file passes through
  EXPECT_EQ(s.calls, 2);
}

TEST(ReadAhead, LargeReadGoesStraightToTheKernelWhenEmpty) {
  Script s({std::string(100, 'x')});
  script = &s;
  ReadAhead ra(16);
  EXPECT_EQ(read_n(ra, 100), std::string(100, 'x'));
  EXPECT_EQ(s.asked.at(0), 100U);  // not cut to the buffer's size
  EXPECT_FALSE(ra.buffered());
}

TEST(ReadAhead, BufferedBytesComeBeforeANewKernelRead) {
  Script s({"abcdefgh", "ijkl"});
  script = &s;
  ReadAhead ra(16);
  EXPECT_EQ(read_n(ra, 3), "abc");
  EXPECT_EQ(read_n(ra, 50), "defgh");  // a short read rather than mixing in a second kernel read
  EXPECT_EQ(s.calls, 1);
  EXPECT_EQ(read_n(ra, 50), "ijkl");
  EXPECT_EQ(s.calls, 2);
}

TEST(ReadAhead, ErrorsKeepErrnoAndLoseNothingBuffered) {
  Script s({"abcd", "efgh"}, 1);
  script = &s;
  ReadAhead ra(16);
  EXPECT_EQ(read_n(ra, 2), "ab");
  EXPECT_EQ(read_n(ra, 2), "cd");
  std::string out(4, '\0');
  errno = 0;
  EXPECT_EQ(ra.read(3, out.data(), 2, fake_read), -1);
  EXPECT_EQ(errno, ECONNRESET);
  EXPECT_EQ(read_n(ra, 4), "efgh");  // a retry after the error reads on
}

TEST(ReadAhead, ZeroLengthReadIsPassedThrough) {
  Script s({"abc"});
  script = &s;
  ReadAhead ra(16);
  EXPECT_EQ(read_n(ra, 0), "");
  EXPECT_EQ(s.asked.at(0), 0U);
  EXPECT_EQ(read_n(ra, 3), "abc");
}

// Milter-style framing over a real socket: a 4-byte length, then that many bytes, many frames per write.
TEST(ReadAhead, RealSocketFramesSurviveArbitrarySplits) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::string wire;
  std::vector<std::string> frames;
  for (int i = 0; i < 200; ++i) {
    frames.push_back(
        std::string(static_cast<std::size_t>(1 + (i * 37) % 300), static_cast<char>('a' + i % 26)));
    const auto len = static_cast<std::uint32_t>(frames.back().size());
    wire.append(reinterpret_cast<const char*>(&len), sizeof len);  // NOLINT
    wire += frames.back();
  }
  ASSERT_EQ(write(sv[0], wire.data(), wire.size()), static_cast<ssize_t>(wire.size()));
  close(sv[0]);
  ReadAhead ra(1024);
  auto read_exact = [&](char* out, std::size_t n) {
    std::size_t have = 0;
    while (have < n) {
      const ssize_t got = ra.read(sv[1], out + have, n - have, ::read);
      if (got <= 0) return false;
      have += static_cast<std::size_t>(got);
    }
    return true;
  };
  for (const std::string& frame : frames) {
    std::uint32_t len = 0;
    ASSERT_TRUE(read_exact(reinterpret_cast<char*>(&len), sizeof len));  // NOLINT
    std::string body(len, '\0');
    ASSERT_TRUE(read_exact(body.data(), len));
    EXPECT_EQ(body, frame);
  }
  char c = 0;
  EXPECT_EQ(ra.read(sv[1], &c, 1, ::read), 0);
  close(sv[1]);
}

TEST(ReadAheadTable, AttachFindDetach) {
  ReadAheadTable table;
  EXPECT_EQ(table.find(5), nullptr);
  ASSERT_TRUE(table.attach(5, 32));
  ASSERT_NE(table.find(5), nullptr);
  ASSERT_TRUE(table.attach(5, 32));  // a stale buffer is replaced, never reused
  EXPECT_NE(table.find(5), nullptr);
  table.detach(5);
  EXPECT_EQ(table.find(5), nullptr);
  table.detach(5);  // twice is harmless
  EXPECT_FALSE(table.attach(-1, 32));
  EXPECT_FALSE(table.attach(ReadAheadTable::kMaxFd, 32));
  EXPECT_EQ(table.find(ReadAheadTable::kMaxFd), nullptr);
  EXPECT_EQ(table.find(-1), nullptr);
}

}  // namespace
}  // namespace chainmail::milter
