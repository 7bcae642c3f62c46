// autoreply_test.cc - the autoreply decisions: the "never replies" table, header injection, threading.
#include "core/autoreply.h"

#include <gtest/gtest.h>

#include <set>

namespace chainmail {
namespace {

Config test_config() {
  Config c = default_config();
  return c;  // hosted: pydis.wtf, pydis.com, pythondiscord.com, owlcorp.uk, int.pydis.wtf
}

ReplyDecision decide(std::string_view sender, std::string_view headers) {
  const std::string message = std::string(headers) + "\nbody\n";
  return should_reply(test_config(), sender, parse_header_fields(message));
}

constexpr std::string_view kPlain = "From: Joe <joe@example.org>\nTo: fortune@pydis.wtf\nSubject: hi\n";

struct Case {
  std::string_view name;
  std::string_view sender;
  std::string_view extra_headers;
  bool reply;
};

TEST(Autoreply, NeverRepliesTable) {
  const Case cases[] = {
      {"ordinary mail", "joe@example.org", "", true},
      {"Auto-Submitted: no", "joe@example.org", "Auto-Submitted: no\n", true},
      {"Precedence: first-class", "joe@example.org", "Precedence: first-class\n", true},
      {"null sender", "", "", false},
      {"null sender <>", "<>", "", false},
      {"invalid sender", "joe@@example.org", "", false},
      {"sender with CR LF", "joe@example.org\r\nBcc: x@y.z", "", false},
      {"MAILER-DAEMON", "MAILER-DAEMON@example.org", "", false},
      {"mailer-daemon lower case", "mailer-daemon@example.org", "", false},
      {"postmaster", "postmaster@example.org", "", false},
      {"owner- prefix", "owner-python-list@example.org", "", false},
      {"-request suffix", "python-list-request@example.org", "", false},
      {"-bounces suffix", "python-list-bounces@example.org", "", false},
      {"noreply", "noreply@example.org", "", false},
      {"our main domain", "joe@pydis.wtf", "", false},
      {"our alias domain, upper case", "joe@PYDIS.COM", "", false},
      {"our internal domain", "fortune@int.pydis.wtf", "", false},
      {"List-Id", "joe@example.org", "List-Id: <python.example.org>\n", false},
      {"List-Unsubscribe", "joe@example.org", "List-Unsubscribe: <mailto:u@example.org>\n", false},
      {"list-post lower case", "joe@example.org", "list-post: <mailto:p@example.org>\n", false},
      {"Precedence: bulk", "joe@example.org", "Precedence: bulk\n", false},
      {"Precedence: junk", "joe@example.org", "Precedence: junk\n", false},
      {"Precedence: list", "joe@example.org", "Precedence: List\n", false},
      {"Precedence: bulk with comment", "joe@example.org", "Precedence:  bulk (newsletter)\n", false},
      {"Auto-Submitted: auto-replied", "joe@example.org", "Auto-Submitted: auto-replied\n", false},
      {"Auto-Submitted: auto-generated", "joe@example.org", "Auto-Submitted: auto-generated\n", false},
      {"Auto-Submitted: auto-notified; params", "joe@example.org",
       "Auto-Submitted: auto-notified; owner-email=x\n", false},
      {"Auto-Submitted folded", "joe@example.org", "Auto-Submitted:\n auto-replied\n", false},
      {"X-Auto-Response-Suppress: All", "joe@example.org", "X-Auto-Response-Suppress: All\n", false},
      {"X-Auto-Response-Suppress: OOF", "joe@example.org", "X-Auto-Response-Suppress: DR, OOF\n", false},
      {"malformed header line", "joe@example.org", "this is not a header\n", false},
  };
  for (const auto& c : cases) {
    const std::string headers = std::string(kPlain) + std::string(c.extra_headers);
    const auto d = decide(c.sender, headers);
    EXPECT_EQ(d.reply, c.reply) << c.name << ": got reason \"" << d.reason << "\"";
    if (d.reply) {
      ASSERT_TRUE(d.recipient) << c.name;
      EXPECT_EQ(d.recipient->str(), c.sender) << c.name;
    } else {
      EXPECT_FALSE(d.reason.empty()) << c.name;
    }
  }
}

TEST(Autoreply, HeaderSectionOverTheLimitIsNotAnswered) {
  std::string headers(kPlain);
  for (std::size_t i = 0; i <= kMaxHeaderFields; ++i) headers += "X-Filler: " + std::to_string(i) + "\n";
  EXPECT_FALSE(decide("joe@example.org", headers).reply);
}

TEST(Autoreply, RoleSenders) {
  EXPECT_TRUE(is_role_sender("Mailer-Daemon"));
  EXPECT_TRUE(is_role_sender("owner-x"));
  EXPECT_TRUE(is_role_sender("x-REQUEST"));
  EXPECT_FALSE(is_role_sender("joe"));
  EXPECT_FALSE(is_role_sender("requester"));
  EXPECT_FALSE(is_role_sender("owner"));
}

TEST(Autoreply, MsgIds) {
  EXPECT_EQ(clean_msg_id(" <a.b@c.d> ").value_or(""), "<a.b@c.d>");
  EXPECT_FALSE(clean_msg_id("<a b@c>"));
  EXPECT_FALSE(clean_msg_id("<ab@c>\r\nBcc: x@y"));
  EXPECT_FALSE(clean_msg_id("<abc>"));
  EXPECT_FALSE(clean_msg_id("a@b"));
  EXPECT_FALSE(clean_msg_id("<a@b\x01>"));
  EXPECT_FALSE(clean_msg_id("<" + std::string(300, 'a') + "@b>"));
}

TEST(Autoreply, RateKeyIsFixedHexAndCaseFolded) {
  const Address a{"Joe", "example.org"};
  const Address b{"joe", "example.org"};
  const Address c{"../../etc/passwd", "example.org"};
  const Address fortune{"fortune", "pydis.wtf"};
  const Address help{"Help", "pydis.wtf"};
  EXPECT_EQ(rate_key(fortune, a), rate_key(fortune, b));
  EXPECT_NE(rate_key(fortune, a), rate_key(fortune, c));
  EXPECT_NE(rate_key(fortune, a), rate_key(help, a));  // each service answers a sender once
  EXPECT_EQ(rate_key(help, a), rate_key(Address{"help", "pydis.wtf"}, a));
  for (const auto& k : {rate_key(fortune, a), rate_key(help, c)}) {
    EXPECT_EQ(k.size(), 32U);
    EXPECT_EQ(k.find_first_not_of("0123456789abcdef"), std::string::npos);
  }
}

ReplyParts parts() {
  ReplyParts p{{"fortune", "pydis.wtf"}, {"joe", "example.org"}, "Re: %s", "A fortune.\n", "tok123", 0};
  return p;
}

// Every header line of the reply: no line may be one the incoming message chose.
std::set<std::string> header_names(const std::string& reply) {
  std::set<std::string> names;
  const auto end = reply.find("\n\n");
  std::size_t pos = 0;
  while (pos < end) {
    const auto nl = reply.find('\n', pos);
    const std::string line = reply.substr(pos, nl - pos);
    if (!line.empty() && line.front() != ' ') names.insert(line.substr(0, line.find(':')));
    pos = nl + 1;
  }
  return names;
}

TEST(Autoreply, ReplyIsThreadedAndMarked) {
  const auto in = parse_header_fields(
      "Subject: Hello\nMessage-ID: <m1@example.org>\nReferences: <r0@x.org> <r1@x.org>\n\nbody\n");
  const auto reply = build_reply(parts(), in);
  EXPECT_NE(reply.find("From: fortune@pydis.wtf\n"), std::string::npos);
  EXPECT_NE(reply.find("To: joe@example.org\n"), std::string::npos);
  EXPECT_NE(reply.find("Subject: Re: Hello\n"), std::string::npos);
  EXPECT_NE(reply.find("In-Reply-To: <m1@example.org>\n"), std::string::npos);
  EXPECT_NE(reply.find("References: <r0@x.org>\n <r1@x.org>\n <m1@example.org>\n"), std::string::npos);
  EXPECT_NE(reply.find("Auto-Submitted: auto-replied\n"), std::string::npos);
  EXPECT_NE(reply.find("Message-ID: <tok123@pydis.wtf>\n"), std::string::npos);
  EXPECT_NE(reply.find("Date: Thu, 01 Jan 1970 00:00:00 +0000\n"), std::string::npos);
  EXPECT_TRUE(reply.ends_with("\n\nA fortune.\n"));
}

TEST(Autoreply, NoHeaderInjection) {
  const std::string attacks[] = {
      "Subject: a\r\nBcc: victim@example.com\r\nMessage-ID: <m\r\nBcc: v2@example.com>\r\n\r\nbody\r\n",
      "Subject: =?utf-8?q?x?= \x01\x7f\xff tail\nMessage-ID: <m@x>\rBcc: v@example.com\n\nbody\n",
      "Subject: folded\n Bcc: victim@example.com\nReferences: <a@b>\n Bcc: c@d <e@f>\n\nbody\n",
  };
  for (const auto& msg : attacks) {
    const auto reply = build_reply(parts(), parse_header_fields(msg));
    const auto names = header_names(reply);
    EXPECT_EQ(names.count("Bcc"), 0U) << reply;
    const auto head = reply.substr(0, reply.find("\n\n"));
    for (const char ch : head) {
      const auto u = static_cast<unsigned char>(ch);
      EXPECT_TRUE(ch == '\n' || (u >= 32 && u < 127)) << "byte " << static_cast<int>(u) << " in\n" << reply;
    }
    const std::set<std::string> allowed = {"From",
                                           "To",
                                           "Subject",
                                           "Date",
                                           "Message-ID",
                                           "Auto-Submitted",
                                           "X-Auto-Response-Suppress",
                                           "MIME-Version",
                                           "Content-Type",
                                           "Content-Transfer-Encoding",
                                           "In-Reply-To",
                                           "References"};
    for (const auto& n : names) EXPECT_EQ(allowed.count(n), 1U) << n << " in\n" << reply;
    EXPECT_EQ(names.count("Subject"), 1U);
  }
}

TEST(Autoreply, LongSubjectIsCutAndBodyLinesBounded) {
  const std::string msg = "Subject: " + std::string(5000, 'x') + "\n\n";
  auto p = parts();
  p.body = std::string(3000, 'y') + std::string("\r\n\0z", 4);
  const auto reply = build_reply(p, parse_header_fields(msg));
  const auto subject = reply.substr(reply.find("Subject: "));
  EXPECT_LT(subject.find('\n'), 9 + 4 + kMaxReplySubject + 1);
  std::size_t pos = 0;
  while (pos < reply.size()) {
    const auto nl = reply.find('\n', pos);
    EXPECT_LE(nl - pos, 998U);
    pos = nl + 1;
  }
  EXPECT_EQ(reply.find('\r'), std::string::npos);
  EXPECT_EQ(reply.find('\0'), std::string::npos);
  EXPECT_TRUE(reply.ends_with("\nz\n"));
}

}  // namespace
}  // namespace chainmail
