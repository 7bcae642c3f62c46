// connection_io_test.cc - ReadAhead and ReplyBatch give exactly the bytes, end of file and errors the kernel
// would give, with fewer calls.
#include "milter/connection_io.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
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
  EXPECT_FALSE(ra.readable());
  EXPECT_EQ(read_n(ra, 5), "hdr01");
  EXPECT_TRUE(ra.readable());
  EXPECT_EQ(read_n(ra, 5), "hdr02");
  EXPECT_EQ(read_n(ra, 100), "body-of-command");  // what is buffered, no second kernel read
  EXPECT_FALSE(ra.readable());
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
  EXPECT_FALSE(ra.readable());
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

ssize_t would_block(int /*fd*/, void* /*buf*/, std::size_t /*count*/) {
  errno = EAGAIN;
  return -1;
}

TEST(ReadAhead, FillTakesWhatIsWaitingForTheNextReads) {
  Script s({"abcdef"});
  script = &s;
  ReadAhead ra(64);
  errno = 0;
  ra.fill(3, fake_read);
  EXPECT_EQ(errno, 0);  // poll() succeeded; the fill leaves no trace in errno
  EXPECT_TRUE(ra.readable());
  ra.fill(3, fake_read);  // already readable: no second kernel read
  EXPECT_EQ(s.calls, 1);
  EXPECT_EQ(read_n(ra, 2), "ab");
  EXPECT_EQ(read_n(ra, 10), "cdef");
  EXPECT_EQ(s.calls, 1);
}

TEST(ReadAhead, FillKeepsEndOfFileAndErrorsForTheRead) {
  {
    Script s({});
    script = &s;
    ReadAhead ra(64);
    ra.fill(3, fake_read);
    EXPECT_TRUE(ra.readable());
    EXPECT_EQ(read_n(ra, 5), "");
    EXPECT_EQ(read_n(ra, 5), "");  // still end of file, without asking the kernel again
    EXPECT_EQ(s.calls, 1);
  }
  {
    Script s({"later"}, 0);
    script = &s;
    ReadAhead ra(64);
    errno = 0;
    ra.fill(3, fake_read);
    EXPECT_EQ(errno, 0);
    EXPECT_TRUE(ra.readable());
    std::string out(4, '\0');
    EXPECT_EQ(ra.read(3, out.data(), 4, fake_read), -1);
    EXPECT_EQ(errno, ECONNRESET);  // reported once, at the read, as the kernel would have
    EXPECT_EQ(read_n(ra, 10), "later");
  }
  {
    ReadAhead ra(64);
    ra.fill(3, would_block);  // nothing waiting after all: nothing kept
    EXPECT_FALSE(ra.readable());
  }
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

// A scripted socket for ReplyBatch: records what each send() carried; `room` bytes fit before it is full.
struct Sink {
  std::vector<std::string> sends;
  std::size_t room = SIZE_MAX;
  int calls = 0;
};
Sink* sink = nullptr;

ssize_t fake_send(int /*fd*/, const iovec* iov, int iovcnt) {
  ++sink->calls;
  std::string all;
  for (int i = 0; i < iovcnt; ++i) all.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  if (sink->room == 0) {
    errno = EAGAIN;
    return -1;
  }
  all.resize(std::min(all.size(), sink->room));
  sink->room -= all.size();
  sink->sends.push_back(all);
  return static_cast<ssize_t>(all.size());
}

// One reply as libmilter's mi_wr_cmd() writes it: 4-byte length (command + data), command, data.
struct Reply {
  Reply(char command, std::string body) : data(std::move(body)) {
    const auto length = static_cast<std::uint32_t>(data.size() + 1);
    head = {static_cast<char>(length >> 24U), static_cast<char>(length >> 16U),
            static_cast<char>(length >> 8U), static_cast<char>(length), command};
    iov[0] = {head.data(), head.size()};
    iov[1] = {data.data(), data.size()};
  }
  [[nodiscard]] std::string bytes() const { return head + data; }
  [[nodiscard]] ssize_t size() const { return static_cast<ssize_t>(head.size() + data.size()); }
  std::string head;
  std::string data;
  std::array<iovec, 2> iov{};
};

TEST(ReplyBatch, EditsGoOutWithTheReplyThatEndsTheStep) {
  Sink s;
  sink = &s;
  ReplyBatch out;
  Reply header('i', std::string("\0\0\0\1Authentication-Results\0x.example; spf=pass\0", 47));
  Reply del('-', std::string("<a@example.org>\0", 16));
  Reply add('2', std::string("<a@mail.example>\0ORCPT=rfc822;a@example.org\0", 44));
  Reply accept('c', "");
  EXPECT_EQ(out.writev(3, header.iov.data(), 2, fake_send), header.size());
  EXPECT_EQ(out.writev(3, del.iov.data(), 2, fake_send), del.size());
  EXPECT_EQ(out.writev(3, add.iov.data(), 2, fake_send), add.size());
  EXPECT_EQ(s.calls, 0);  // nothing sent yet: the MTA is not woken for each edit
  EXPECT_EQ(out.writev(3, accept.iov.data(), 1, fake_send), accept.size());
  ASSERT_EQ(s.sends.size(), 1U);
  EXPECT_EQ(s.sends[0], header.bytes() + del.bytes() + add.bytes() + accept.bytes());
  EXPECT_EQ(out.held(), 0U);
  EXPECT_FALSE(out.blocked());
}

TEST(ReplyBatch, RepliesThatAreNotEditsGoOutAtOnce) {
  Sink s;
  sink = &s;
  ReplyBatch out;
  for (const char command : {'c', 'a', 'r', 't', 'y', 'p', 's', 'd', 'O'}) {
    Reply reply(command, command == 'y' ? std::string("550 5.7.1 no\0", 13) : "");
    EXPECT_EQ(out.writev(3, reply.iov.data(), 2, fake_send), reply.size());
  }
  EXPECT_EQ(s.calls, 9);
}

TEST(ReplyBatch, AFullSocketIsReportedAndNothingIsLostOrReordered) {
  Sink s;
  s.room = 10;
  sink = &s;
  ReplyBatch out;
  Reply header('h', std::string("X-Test\0some value here\0", 23));
  Reply accept('a', "");
  ASSERT_EQ(out.writev(3, header.iov.data(), 2, fake_send), header.size());
  errno = 0;
  EXPECT_EQ(out.writev(3, accept.iov.data(), 1, fake_send), -1);  // only part of the held edit fitted
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_TRUE(out.blocked());  // libmilter's next poll() must ask the kernel
  EXPECT_EQ(out.held(), static_cast<std::size_t>(header.size()) - 10);
  // Still full: the held rest goes first, and nothing new is held while blocked.
  s.room = 0;
  EXPECT_EQ(out.writev(3, accept.iov.data(), 1, fake_send), -1);
  EXPECT_EQ(errno, EAGAIN);
  out.unblock();  // poll() said writable
  s.room = SIZE_MAX;
  EXPECT_EQ(out.writev(3, accept.iov.data(), 1, fake_send), accept.size());
  std::string all;
  for (const std::string& sent : s.sends) all += sent;
  EXPECT_EQ(all, header.bytes() + accept.bytes());
  EXPECT_FALSE(out.blocked());
}

TEST(ReplyBatch, AShortWriteOfAReplyMarksTheConnectionBlocked) {
  Sink s;
  s.room = 3;
  sink = &s;
  ReplyBatch out;
  Reply accept('c', "");
  EXPECT_EQ(out.writev(3, accept.iov.data(), 1, fake_send), 3);
  EXPECT_TRUE(out.blocked());
}

TEST(ReplyBatch, ARetryOfAPartlyWrittenEditIsNeverHeld) {
  Sink s;
  sink = &s;
  ReplyBatch out;
  Reply header('h', std::string("X-Test\0v\0", 9));
  iovec rest{header.data.data(), header.data.size()};  // the head already went out
  EXPECT_EQ(out.writev(3, &rest, 1, fake_send), static_cast<ssize_t>(header.data.size()));
  EXPECT_EQ(s.calls, 1);
}

TEST(ReplyBatch, EditsBeyondTheCapAreWrittenAsTheyCome) {
  Sink s;
  sink = &s;
  ReplyBatch out;
  Reply big('h', std::string("X-Big\0", 6) + std::string(ReplyBatch::kMaxHeld, 'v') + std::string(1, '\0'));
  EXPECT_EQ(out.writev(3, big.iov.data(), 2, fake_send), big.size());
  EXPECT_EQ(s.calls, 1);
  EXPECT_EQ(out.held(), 0U);
}

TEST(ConnectionTable, AttachFindDetach) {
  ConnectionTable table;
  EXPECT_EQ(table.find(5), nullptr);
  ASSERT_TRUE(table.attach(5, 32));
  ASSERT_NE(table.find(5), nullptr);
  ASSERT_TRUE(table.attach(5, 32));  // a stale buffer is replaced, never reused
  EXPECT_NE(table.find(5), nullptr);
  table.detach(5);
  EXPECT_EQ(table.find(5), nullptr);
  table.detach(5);  // twice is harmless
  EXPECT_FALSE(table.attach(-1, 32));
  EXPECT_FALSE(table.attach(ConnectionTable::kMaxFd, 32));
  EXPECT_EQ(table.find(ConnectionTable::kMaxFd), nullptr);
  EXPECT_EQ(table.find(-1), nullptr);
}

}  // namespace
}  // namespace chainmail::milter
