// authres_test.cc - Authentication-Results: exact output, RFC 8601 appendix B, round trips, hostile input.
#include "core/authres.h"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace chainmail::authres {
namespace {

std::vector<std::string> lines_of(const std::string& v) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (true) {
    const auto crlf = v.find("\r\n", start);
    lines.push_back(v.substr(start, crlf == std::string::npos ? std::string::npos : crlf - start));
    if (crlf == std::string::npos) return lines;
    start = crlf + 2;
  }
}

std::size_t columns(const std::string& line) {
  std::size_t col = 0;
  for (char c : line) col += c == '\t' ? 8 : 1;
  return col;
}

// What a header must look like on the wire: no CR or LF except CRLF folds followed by WSP, every line within
// `limit` columns (the first after "Authentication-Results: "), and no line that is only white space. Text
// with no space in it cannot be folded, so hostile 900-octet values are held to RFC 5322's hard 998 limit.
void expect_well_folded(const std::string& v, std::size_t limit = 78) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\n') {
      ASSERT_TRUE(i > 0 && v[i - 1] == '\r') << "bare LF at " << i;
    } else if (v[i] == '\r') {
      ASSERT_TRUE(i + 2 < v.size() && v[i + 1] == '\n' && (v[i + 2] == ' ' || v[i + 2] == '\t'))
          << "CR that does not fold at " << i;
    }
  }
  const auto lines = lines_of(v);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto width = columns(lines[i]) + (i == 0 ? std::string("Authentication-Results: ").size() : 0);
    EXPECT_LE(width, limit) << "line " << i << ": " << lines[i];
    EXPECT_NE(lines[i].find_first_not_of(" \t"), std::string::npos) << "blank line " << i;
  }
}

// RFC 5322 wire form, which the folding checks below read.
std::string wire(std::string_view id, std::span<const MethodResult> results) {
  return format(id, results, LineEnd::crlf);
}

Property prop(std::string ptype, std::string name, std::string value) {
  return {std::move(ptype), std::move(name), std::move(value)};
}

TEST(AuthresFormat, ExactLayout) {
  const std::vector<MethodResult> results = {
      {"spf", "pass", "", {prop("smtp", "mailfrom", "alice@example.net")}, ""},
      {"dkim", "pass", "", {prop("header", "d", "example.net"), prop("header", "s", "sel1")}, ""},
      {"dmarc", "fail", "", {prop("header", "from", "example.net")}, "p=reject"},
  };
  EXPECT_EQ(wire("mx.example.org", results),
            "mx.example.org;\r\n"
            "\tspf=pass smtp.mailfrom=alice@example.net;\r\n"
            "\tdkim=pass header.d=example.net header.s=sel1;\r\n"
            "\tdmarc=fail (p=reject) header.from=example.net");
}

TEST(AuthresFormat, DefaultLineEndIsLfForSmfiInsheader) {
  const std::vector<MethodResult> results = {
      {"spf", "pass", "", {prop("smtp", "mailfrom", "alice@example.net")}, ""},
      {"dmarc", "pass", "", {prop("header", "from", "example.net")}, ""},
  };
  const auto lf = format("mx.example.org", results);
  EXPECT_EQ(
      lf,
      "mx.example.org;\n\tspf=pass smtp.mailfrom=alice@example.net;\n\tdmarc=pass header.from=example.net");
  EXPECT_EQ(lf.find('\r'), std::string::npos);
  const auto p = parse(lf);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->results, results);
}

TEST(AuthresFormat, NoResultsIsNone) {
  EXPECT_EQ(format("mx.example.org", {}), "mx.example.org; none");
  const auto p = parse("mx.example.org; none");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->authserv_id, "mx.example.org");
  EXPECT_TRUE(p->results.empty());
}

TEST(AuthresFormat, QuotesWhatIsNotATokenOrAddress) {
  const std::vector<MethodResult> results = {
      {"dkim",
       "fail",
       "signature did not verify",
       {prop("header", "b", "ab/cd+E"), prop("header", "i", "@example.net"),
        prop("smtp", "mailfrom", "a=b@x.org"), prop("policy", "iprev", "2001:db8::1"),
        prop("header", "x", ""), prop("header", "y", "say \"hi\" \\o/")},
       ""},
  };
  const auto v = wire("mx.example.org", results);
  EXPECT_NE(v.find("reason=\"signature did not verify\""), std::string::npos) << v;
  EXPECT_NE(v.find("header.b=\"ab/cd+E\""), std::string::npos) << v;
  EXPECT_NE(v.find("header.i=@example.net"), std::string::npos) << v;
  EXPECT_NE(v.find("smtp.mailfrom=a=b@x.org"), std::string::npos) << v;  // dot-atom local part
  EXPECT_NE(v.find("policy.iprev=\"2001:db8::1\""), std::string::npos) << v;
  EXPECT_NE(v.find("header.x=\"\""), std::string::npos) << v;
  EXPECT_NE(v.find(R"(header.y="say \"hi\" \\o/")"), std::string::npos) << v;
  const auto p = parse(v);
  ASSERT_TRUE(p) << v;
  ASSERT_EQ(p->results.size(), 1U);
  EXPECT_EQ(p->results[0], results[0]);
}

TEST(AuthresFormat, FoldsLongResinfosAndComments) {
  MethodResult spf{"spf", "pass", "", {}, ""};
  spf.comment =
      "mx.example.org: domain of a-rather-long-sender-name@mail.example.net designates 192.0.2.1 as "
      "permitted sender, and this comment   keeps   going with spacing";
  spf.properties = {prop("smtp", "mailfrom", "a-rather-long-sender-name@mail.example.net"),
                    prop("smtp", "helo", "mail.example.net")};
  MethodResult dkim{
      "dkim", "pass", "a reason long enough to need a fold inside the quoted string itself ok", {}, ""};
  dkim.properties = {prop("header", "d", "example.net"), prop("header", "s", "selector-2024"),
                     prop("header", "b", "AbCdEf/+gh")};
  const std::vector<MethodResult> results = {spf, dkim};
  const auto v = wire("mx.example.org", results);
  expect_well_folded(v);
  const auto p = parse(v);
  ASSERT_TRUE(p) << v;
  EXPECT_EQ(p->results, results) << v;
}

TEST(AuthresFormat, LongUnbreakableValueStaysOnOneLine) {
  const std::string local(300, 'a');
  const std::vector<MethodResult> results = {
      {"spf", "pass", "", {prop("smtp", "mailfrom", local + "@x.org")}, ""}};
  const auto v = wire("mx.example.org", results);
  const auto p = parse(v);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->results, results);
  for (const auto& line : lines_of(v)) EXPECT_LT(line.size(), 998U);
}

TEST(AuthresFormat, OverlongTextIsCutAtACharacterBoundary) {
  std::string comment(kMaxFormattedText - 1, 'x');
  comment += "\xc3\xa9\xc3\xa9";  // é é: the cut falls inside the first one
  const std::vector<MethodResult> results = {{"spf", "pass", "", {}, comment}};
  const auto p = parse(wire("mx.example.org", results));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->results[0].comment, std::string(kMaxFormattedText - 1, 'x'));
}

TEST(AuthresFormat, RejectsProgrammingErrors) {
  const std::vector<MethodResult> ok = {{"spf", "pass", "", {}, ""}};
  EXPECT_THROW(format("", ok), std::invalid_argument);
  EXPECT_THROW(format("mx example", ok), std::invalid_argument);
  EXPECT_THROW(format("mx;example", ok), std::invalid_argument);
  const std::vector<std::vector<MethodResult>> bad = {
      {{"spf;", "pass", "", {}, ""}},
      {{"spf", "pass x", "", {}, ""}},
      {{"", "pass", "", {}, ""}},
      {{"spf", "pass-", "", {}, ""}},
      {{"spf", "pass", "", {prop("smtp", "mail from", "a@b")}, ""}},
      {{"spf", "pass", "", {prop("sm.tp", "mailfrom", "a@b")}, ""}},
  };
  for (const auto& results : bad) EXPECT_THROW(wire("mx.example.org", results), std::invalid_argument);
}

// Attacker text (a sender address, a HELO name, a DKIM d= or s=) in every free-form slot: the output must
// hold exactly one resinfo per input, with the values back unchanged except control characters -> '?'.
TEST(AuthresFormat, HostileValuesCannotInjectAnything) {
  const std::vector<std::string> hostile = {
      "a@b.example; dmarc=pass header.from=victim.example",
      "x\r\nAuthentication-Results: mx.example.org; dmarc=pass",
      "x\nX-Injected: yes",
      "\"; spf=pass",
      "\\\"; spf=pass (",
      "a) ; dkim=pass (b",
      "((((",
      "))))",
      "\\",
      "x\r\n\tdmarc=pass",
      std::string("nul\0byte", 8),
      "tab\there",
      "\x7f\x01\x1b[31m",
      "caf\xc3\xa9@example.net",
      "mx.example.org; none",
      "=;.@\"()<>,:[]?/ ",
      std::string(2000, ';'),
  };
  for (const auto& h : hostile) {
    const std::vector<MethodResult> results = {
        {"spf", "fail", h, {prop("smtp", "mailfrom", h), prop("smtp", "helo", h)}, h},
        {"dkim", "fail", "", {prop("header", "d", h), prop("header", "s", h)}, h},
    };
    const auto v = wire("mx.example.org", results);
    expect_well_folded(v, h.size() > 60 ? 998 : 78);
    const auto p = parse(v);
    ASSERT_TRUE(p) << v;
    EXPECT_EQ(p->authserv_id, "mx.example.org");
    ASSERT_EQ(p->results.size(), 2U) << v;
    std::string clean = h.substr(0, kMaxFormattedText);
    for (char& c : clean) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    EXPECT_EQ(p->results[0].reason, clean);
    EXPECT_EQ(p->results[0].comment, clean);
    ASSERT_EQ(p->results[0].properties.size(), 2U);
    EXPECT_EQ(p->results[0].properties[0].value, clean);
    EXPECT_EQ(p->results[0].properties[1].value, clean);
    EXPECT_EQ(p->results[1].properties[0].value, clean);
    EXPECT_EQ(p->results[1].comment, clean);
    EXPECT_EQ(p->results[1].method, "dkim");
  }
}

TEST(AuthresRoundTrip, Table) {
  const std::vector<std::vector<MethodResult>> cases = {
      {{"spf", "none", "", {prop("smtp", "helo", "mail.example.net")}, ""}},
      {{"spf", "softfail", "", {prop("smtp", "mailfrom", "root@localhost")}, "no designated sender"}},
      {{"dkim",
        "pass",
        "",
        {prop("header", "d", "example.net"), prop("header", "i", "@mail.example.net")},
        ""},
       {"dkim", "fail", "body hash mismatch", {prop("header", "d", "example.org")}, ""},
       {"dmarc", "pass", "", {prop("header", "from", "example.net")}, "p=none sp=none"}},
      {{"dmarc", "temperror", "", {prop("header", "from", "sub.example.net")}, "DNS: timeout"}},
      {{"auth", "pass", "", {prop("smtp", "auth", "sender@example.net")}, "cram-md5"}},
      {{"iprev", "pass", "", {prop("policy", "iprev", "192.0.2.200")}, ""}},
      {{"spf", "pass", "", {prop("smtp", "mailfrom", "\"john doe\"@example.net")}, ""}},
      {{"spf", "pass", "", {prop("smtp", "mailfrom", "user+tag/x=y?@example.net")}, ""}},
      {{"x-custom-method", "neutral", "", {}, " leading and trailing spaces "}},
      {{"dkim", "pass", "", {prop("header", "b", "a b  c   d")}, "nested (not really) \\ ok"}},
  };
  for (const auto& results : cases) {
    const auto v = wire("mx.example.org", results);
    expect_well_folded(v);
    const auto p = parse(v);
    ASSERT_TRUE(p) << v;
    EXPECT_EQ(p->authserv_id, "mx.example.org");
    EXPECT_EQ(p->results, results) << v;
  }
}

// Random text built from the characters that matter to the grammar, in every free-form slot: what comes back
// is what went in, control characters aside. Deterministic (fixed seed).
TEST(AuthresRoundTrip, RandomValues) {
  std::mt19937 gen(8601);
  const std::string alphabet = "aZ09.-_@;:,=()\"\\/[]<>? \t\r\n\x01\x7f\xc3\xa9!#$%&'*+^`{|}~";
  auto random_text = [&](std::size_t max_len) {
    std::string t(std::uniform_int_distribution<std::size_t>(0, max_len)(gen), ' ');
    for (char& c : t) c = alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(gen)];
    return t;
  };
  auto clean = [](std::string t) {
    for (char& c : t) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    return t;
  };
  for (int i = 0; i < 3000; ++i) {
    std::vector<MethodResult> results(std::uniform_int_distribution<std::size_t>(1, 4)(gen));
    for (auto& m : results) {
      m.method = "dkim";
      m.result = "fail";
      m.reason = random_text(30);
      m.comment = random_text(90);
      for (std::size_t k = std::uniform_int_distribution<std::size_t>(0, 3)(gen); k > 0; --k) {
        m.properties.push_back(prop("header", "x", random_text(40)));
      }
    }
    const auto v = wire("mx.example.org", results);
    expect_well_folded(v, 998);  // random words without spaces cannot always be folded at 78
    const auto p = parse(v);
    ASSERT_TRUE(p) << v;
    ASSERT_EQ(p->results.size(), results.size()) << v;
    for (std::size_t k = 0; k < results.size(); ++k) {
      EXPECT_EQ(p->results[k].reason, clean(results[k].reason)) << v;
      EXPECT_EQ(p->results[k].comment, clean(results[k].comment)) << v;
      ASSERT_EQ(p->results[k].properties.size(), results[k].properties.size()) << v;
      for (std::size_t j = 0; j < results[k].properties.size(); ++j) {
        EXPECT_EQ(p->results[k].properties[j].value, clean(results[k].properties[j].value)) << v;
      }
    }
  }
}

// Mangled fields: parse never crashes or reads out of bounds (run under the sanitizers), and whenever it
// accepts one, its authserv-id is the one authserv_id() reads.
TEST(AuthresParse, MangledInputIsHandled) {
  std::mt19937 gen(7601);
  const std::string base =
      " mx.example.org 1 (c);\r\n\tspf=pass (a (nested) comment) smtp.mailfrom=a.b@example.net;\r\n"
      "\tdkim/1=fail reason=\"bad \\\"sig\\\"\" header.d=example.net header.i=@example.net;\r\n"
      "\tdmarc=pass header.from=\"x y\"";
  ASSERT_TRUE(parse(base));
  const std::string bytes = ";()\"\\=.@ \t\r\n\x00a1";
  std::size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string v = base;
    for (int edits = std::uniform_int_distribution<int>(1, 4)(gen); edits > 0; --edits) {
      const auto at = std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(gen);
      const char c = bytes[std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(gen)];
      switch (std::uniform_int_distribution<int>(0, 2)(gen)) {
        case 0:
          v[at] = c;
          break;
        case 1:
          v.insert(v.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        default:
          v.erase(at, 1);
          break;
      }
    }
    const auto p = parse(v);
    if (p) {
      ++accepted;
      EXPECT_EQ(authserv_id(v), p->authserv_id) << v;
    }
    // Truncations of the field end inside comments, quoted strings and properties.
    EXPECT_NO_FATAL_FAILURE((void)parse(v.substr(0, v.size() / 2)));
  }
  EXPECT_GT(accepted, 0U);  // the mangling is not so heavy that nothing survives
}

// RFC 8601 appendix B, as printed there (field values after "Authentication-Results:").
TEST(AuthresParse, Rfc8601AppendixB) {
  {  // B.2
    const auto p = parse(" example.org 1; none");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->authserv_id, "example.org");
    EXPECT_TRUE(p->results.empty());
  }
  {  // B.3
    const auto p = parse(" example.com;\r\n          spf=pass smtp.mailfrom=example.net");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->authserv_id, "example.com");
    ASSERT_EQ(p->results.size(), 1U);
    EXPECT_EQ(p->results[0],
              (MethodResult{"spf", "pass", "", {prop("smtp", "mailfrom", "example.net")}, ""}));
  }
  {  // B.4, first field
    const auto p = parse(
        " example.com;\r\n"
        "          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n"
        "          spf=pass smtp.mailfrom=example.net");
    ASSERT_TRUE(p);
    ASSERT_EQ(p->results.size(), 2U);
    EXPECT_EQ(p->results[0],
              (MethodResult{"auth", "pass", "", {prop("smtp", "auth", "sender@example.net")}, "cram-md5"}));
    EXPECT_EQ(p->results[1],
              (MethodResult{"spf", "pass", "", {prop("smtp", "mailfrom", "example.net")}, ""}));
  }
  {  // B.4, second field
    const auto p = parse(" example.com; iprev=pass\r\n          policy.iprev=192.0.2.200");
    ASSERT_TRUE(p);
    ASSERT_EQ(p->results.size(), 1U);
    EXPECT_EQ(p->results[0],
              (MethodResult{"iprev", "pass", "", {prop("policy", "iprev", "192.0.2.200")}, ""}));
  }
  {  // B.5
    const auto p = parse(" example.com;\r\n          dkim=pass (good signature) header.d=example.com");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->results.at(0),
              (MethodResult{"dkim", "pass", "", {prop("header", "d", "example.com")}, "good signature"}));
    const auto q = parse(
        " example.com;\r\n"
        "          auth=pass (cram-md5) smtp.auth=sender@example.com;\r\n"
        "          spf=fail smtp.mailfrom=example.com");
    ASSERT_TRUE(q);
    EXPECT_EQ(q->results.at(1).result, "fail");
  }
  {  // B.6
    const auto p = parse(
        " example.com;\r\n"
        "      dkim=pass reason=\"good signature\"\r\n"
        "        header.i=@mail-router.example.net;\r\n"
        "      dkim=fail reason=\"bad signature\"\r\n"
        "        header.i=@newyork.example.com");
    ASSERT_TRUE(p);
    ASSERT_EQ(p->results.size(), 2U);
    EXPECT_EQ(p->results[0],
              (MethodResult{
                  "dkim", "pass", "good signature", {prop("header", "i", "@mail-router.example.net")}, ""}));
    EXPECT_EQ(
        p->results[1],
        (MethodResult{"dkim", "fail", "bad signature", {prop("header", "i", "@newyork.example.com")}, ""}));
    const auto q = parse(" example.net;\r\n      dkim=pass (good signature) header.i=@newyork.example.com");
    ASSERT_TRUE(q);
    EXPECT_EQ(q->results.at(0).comment, "good signature");
  }
  {  // B.7, the comment-heavy one
    const auto p = parse(
        " foo.example.net (foobar) 1 (baz);\r\n"
        "    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n"
        "      policy (A dot can go here) . (like that) expired\r\n"
        "      (this surprised me) = (as I wasn't expecting it) 1362471462");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->authserv_id, "foo.example.net");
    ASSERT_EQ(p->results.size(), 1U);
    EXPECT_EQ(p->results[0].method, "dkim");
    EXPECT_EQ(p->results[0].result, "fail");
    EXPECT_EQ(p->results[0].properties, (std::vector<Property>{prop("policy", "expired", "1362471462")}));
  }
}

TEST(AuthresParse, RealWorldShapes) {
  const auto gmail = parse(
      "mx.google.com;\r\n"
      "       dkim=pass header.i=@example.com header.s=20230601 header.b=Rk3TGOqP;\r\n"
      "       spf=pass (google.com: domain of alice@example.com designates 209.85.220.41 as permitted "
      "sender) "
      "smtp.mailfrom=alice@example.com;\r\n"
      "       dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) header.from=example.com");
  ASSERT_TRUE(gmail);
  ASSERT_EQ(gmail->results.size(), 3U);
  EXPECT_EQ(gmail->results[2].comment, "p=NONE sp=QUARANTINE dis=NONE");
  // Bare LF folding (as a milter may see it), upper-case keywords, a quoted authserv-id.
  const auto lf = parse("\"mx.example.org\";\n\tSPF=Pass SMTP.MailFrom=a@b.example");
  ASSERT_TRUE(lf);
  EXPECT_EQ(lf->authserv_id, "mx.example.org");
  EXPECT_EQ(lf->results.at(0),
            (MethodResult{"spf", "pass", "", {prop("smtp", "mailfrom", "a@b.example")}, ""}));
  // A final CRLF is part of the field's syntax.
  EXPECT_TRUE(parse("mx.example.org; spf=pass\r\n"));
}

TEST(AuthresParse, RejectsMalformed) {
  const std::vector<std::string> bad = {
      "",
      "   ",
      "mx.example.org",                                 // no resinfo and no "none"
      "mx.example.org;",                                // empty resinfo
      "mx.example.org; spf=pass;",                      // trailing ';'
      "mx.example.org; spf",                            // no result
      "mx.example.org; spf=",                           //
      "mx.example.org; =pass",                          //
      "mx.example.org; spf=pass smtp.mailfrom",         // property without value
      "mx.example.org; spf=pass smtp.mailfrom=",        //
      "mx.example.org; spf=pass mailfrom=a@b.example",  // no ptype (Microsoft's "action=none" shape)
      "mx.example.org; spf=pass smtp.mailfrom=a@b.example reason=x",  // reason after a property
      "mx.example.org; spf=pass reason=x reason=y",                   // two reasons
      "mx.example.org; spf=pass header.b=ab/cd",                      // '/' outside quotes
      "mx.example.org; spf=pass smtp.mailfrom=a@b.example.",          // trailing dot
      "mx.example.org; spf=pass smtp.mailfrom=a..b@c.example",
      "mx.example.org; spf=passsmtp.mailfrom=a@b",       // becomes a keyword "passsmtp" then '.'
      "mx.example.org; spf=pass (unbalanced",            //
      "mx.example.org; spf=pass (a (b) c",               //
      "mx.example.org; spf=pass unbalanced)",            //
      "mx.example.org; spf=pass reason=\"unterminated",  //
      "mx.example.org; spf=pass reason=\"bad \\",        //
      "mx.example.org; spf=pass\r\ndkim=pass",           // line break that does not fold
      "mx.example.org; spf=pass\rdkim=pass",             // bare CR
      "mx.example.org; spf=pass\ndkim=pass",             // bare LF not followed by WSP
      "mx.example.org; spf=pass reason=\"a\r\nb\"",      // unfolded break inside quotes
      "mx.example.org; spf-=pass",                       // keyword ending in '-'
      "mx.example.org; spf/=pass",                       // method version without digits
      "mx.example.org; spf=pass; none",                  // none only alone
      "mx.example.org 1 2; none",                        // one version
      "mx.example.org1; none x",                         //
      "(comment only)",                                  //
      "mx.example.org\x01; none",                        //
      "mx.example.org; spf=pass smtp.mailfrom=a@b\x7f",  //
      "mx.example.org; spf=pass (\x01)",                 // control character in a comment
  };
  for (const auto& v : bad) EXPECT_FALSE(parse(v)) << "accepted: " << v;
}

TEST(AuthresParse, Limits) {
  std::string deep = "mx.example.org; spf=pass ";
  deep += std::string(kMaxCommentDepth + 1, '(') + std::string(kMaxCommentDepth + 1, ')');
  EXPECT_FALSE(parse(deep));
  std::string ok_depth = "mx.example.org; spf=pass ";
  ok_depth += std::string(kMaxCommentDepth, '(') + std::string(kMaxCommentDepth, ')');
  EXPECT_TRUE(parse(ok_depth));

  std::string many = "mx.example.org";
  for (std::size_t i = 0; i <= kMaxResults; ++i) many += "; spf=pass";
  EXPECT_FALSE(parse(many));

  std::string props = "mx.example.org; dkim=pass";
  for (std::size_t i = 0; i <= kMaxProperties; ++i) props += " header.d=x";
  EXPECT_FALSE(parse(props));

  std::string huge = "mx.example.org; spf=pass (";
  huge += std::string(kMaxFieldValue, 'x') + ")";
  EXPECT_FALSE(parse(huge));
  EXPECT_FALSE(authserv_id(huge));
}

TEST(AuthresAuthservId, ReadsOnlyTheId) {
  EXPECT_EQ(authserv_id("mx.example.org; spf=pass"), "mx.example.org");
  EXPECT_EQ(authserv_id("  (c) mx.example.org (d) 1; none"), "mx.example.org");
  EXPECT_EQ(authserv_id("\r\n\tmx.example.org;"), "mx.example.org");
  EXPECT_EQ(authserv_id("\"mx.example\\.org\"; x"), "mx.example.org");
  EXPECT_EQ(authserv_id("mx.example.org"), "mx.example.org");
  // The rest need not parse: that is the point of the cheap form.
  EXPECT_EQ(authserv_id("mx.example.org; garbage ((("), "mx.example.org");
  EXPECT_FALSE(authserv_id(""));
  EXPECT_FALSE(authserv_id(";spf=pass"));
  EXPECT_FALSE(authserv_id("(unbalanced mx.example.org; none"));
  EXPECT_FALSE(authserv_id("mx.example.org\"x\"; none"));
  EXPECT_FALSE(authserv_id("mx.example.org/x; none"));
  EXPECT_FALSE(authserv_id("\"unterminated; none"));
}

// Where the case-insensitive comparison lives: same_authserv_id / claims_authserv_id.
TEST(AuthresAuthservId, ComparisonIsCaseInsensitive) {
  EXPECT_TRUE(same_authserv_id("mx.example.org", "MX.Example.ORG"));
  EXPECT_FALSE(same_authserv_id("mx.example.org", "mx.example.org."));
  EXPECT_FALSE(same_authserv_id("mx.example.org", "mx.example.or"));
  const std::vector<std::string> forged = {
      "MX.EXAMPLE.ORG; dmarc=pass header.from=bank.example",
      "\"mx.example.org\"; dmarc=pass",
      "(hello) Mx.Example.Org (1) 1; dmarc=pass",
      "mx.example.org; this does not parse ((",
      "\"mx.ex\\ample.org\"; none",
  };
  for (const auto& v : forged) EXPECT_TRUE(claims_authserv_id(v, "mx.example.org")) << v;
  const std::vector<std::string> foreign = {
      "mx.example.net; dmarc=pass",
      "mx.example.org.evil; dmarc=pass",
      "example.org; dmarc=pass",
      "; mx.example.org",
  };
  for (const auto& v : foreign) EXPECT_FALSE(claims_authserv_id(v, "mx.example.org")) << v;
}

TEST(AuthresAuthservId, Validity) {
  EXPECT_TRUE(valid_authserv_id("mx.example.org"));
  EXPECT_TRUE(valid_authserv_id("mx-1"));
  EXPECT_FALSE(valid_authserv_id(""));
  EXPECT_FALSE(valid_authserv_id("mx example"));
  EXPECT_FALSE(valid_authserv_id("mx;"));
  EXPECT_FALSE(valid_authserv_id(std::string(256, 'a')));
}

}  // namespace
}  // namespace chainmail::authres
