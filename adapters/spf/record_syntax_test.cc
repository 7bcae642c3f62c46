// record_syntax_test.cc - RFC 7208 record selection, the ABNF check, the /0 rewriting and explanation macros.
#include "adapters/spf/record_syntax.h"

#include <gtest/gtest.h>

#include <string>

namespace chainmail::spf {
namespace {

TEST(RecordSyntax, SelectsOnlyVersionOneRecords) {
  struct Case {
    const char* txt;
    bool want;
  };
  const Case cases[] = {
      {"v=spf1", true},      {"v=spf1 -all", true},   {"V=SpF1 ~all", true},   {"v=spf10", false},
      {"v=spf1-all", false}, {"v=spf2.0/pra", false}, {" v=spf1 -all", false}, {"", false},
      {"spf1 -all", false},  {"v=spf1\t-all", false},
  };
  for (const auto& c : cases) EXPECT_EQ(is_spf_record(c.txt), c.want) << c.txt;
}

TEST(RecordSyntax, AcceptsWhatTheGrammarAllows) {
  const char* valid[] = {
      "v=spf1",
      "v=spf1 -all",
      "v=spf1  a  mx  -all ",
      "v=spf1 +a -mx ~ptr ?all",
      "v=spf1 a:mail.example.com/24//64 mx:example.org//128 -all",
      "v=spf1 a/32 mx/24 a//64",
      "v=spf1 ip4:192.0.2.0/24 ip4:10.0.0.1 ip6:2001:db8::/32 ip6:::ffff:1.2.3.4 -all",
      "v=spf1 include:_spf.example.net exists:%{ir}.%{l1r+-}._spf.%{d} -all",
      "v=spf1 a:foo:bar/baz.example.com",  // ':' and '/' are macro-literals
      "v=spf1 a:mail.example...com -all",  // syntactically fine; cannot exist
      "v=spf1 a:foo.example.xn--zckzah",   // toplabel with dashes
      "v=spf1 a:a.1-2",                    // toplabel "1-2" (second alternative)
      "v=spf1 a:example.com. -all",        // trailing dot
      "v=spf1 redirect=%{d}.d.spf.example.com.",
      "v=spf1 exists:%{i}.%{h} -all",  // ends with a macro
      "v=spf1 a:macro%%percent%_%_space%-url-space.example.com",
      "v=spf1 -all exp=explain.%{d}",
      "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all",
      "v=spf1 default=pass foo=%{c}%{r}%{t}",  // unknown modifiers: any macro letter
      "v=spf1 exists:%{d2r.-+,/_=}.example.com",
      "v=spf1 IP4:1.2.3.4 A:Example.COM MX -ALL",
  };
  for (const char* r : valid) {
    const RecordCheck c = check_record(r, false);
    EXPECT_TRUE(c.ok) << r << ": " << c.error;
  }
}

TEST(RecordSyntax, RefusesWhatTheGrammarDoesNot) {
  const char* invalid[] = {
      "v=spf1 ip4:1.2.3.4 -all moo",         // unknown mechanism, even after all
      "v=spf1 moo.cow/far_out=man:dog/cat",  // not a modifier name
      "v=spf1 moo.cow:far_out=man:dog/cat",
      "v=spf1 1up=foo",
      "v=spf1 =all",
      "v=spf1 redirect:example.com",   // redirect is a modifier
      "v=spf1 -redirect=example.com",  // modifiers take no qualifier
      "v=spf1 a:foo-bar -all",         // no "." toplabel
      "v=spf1 a:111.222.33.44",        // all-numeric toplabel
      "v=spf1 a:abc.123",
      "v=spf1 a:museum",
      "v=spf1 a:museum.",
      "v=spf1 a:example.-com",
      "v=spf1 a:example.com:8080",
      "v=spf1 a:",
      "v=spf1 a/33",
      "v=spf1 a//129",
      "v=spf1 a/24/64",
      "v=spf1 a/032",
      "v=spf1 mx:abc.123",
      "v=spf1 -all.",
      "v=spf1 -all:foobar",
      "v=spf1 -all/8",
      "v=spf1 ptr/0",
      "v=spf1 ptr:",
      "v=spf1 include",
      "v=spf1 include:",
      "v=spf1 include:ip5.example.com/24",
      "v=spf1 exists",
      "v=spf1 exists:",
      "v=spf1 exists:mail.example.com/24",
      "v=spf1 ip4",
      "v=spf1 ip4:1.2.3",
      "v=spf1 ip4:1.2.3.4:8080",
      "v=spf1 ip4:1.2.3.4//32",
      "v=spf1 ip4:1.2.3.4/33",
      "v=spf1 ip4:1.2.3.4/032",
      "v=spf1 ip4:01.2.3.4",
      "v=spf1 ip4:256.2.3.4",
      "v=spf1 -all ip6",
      "v=spf1 ip6:::1.1.1.1/129",
      "v=spf1 ip6:::1.1.1.1//33",
      "v=spf1 ip6::CAFE::BABE",
      "v=spf1 exp=",
      "v=spf1 exp=-all",
      "v=spf1 redirect=",
      "v=spf1 redirect=-all ?all",
      "v=spf1 exp=a.example.com exp=b.example.com",
      "v=spf1 redirect=a.example.com redirect=a.example.com",
      "v=spf1 -exists:%(ir).sbl.example.com",  // '%' not followed by { % _ -
      "v=spf1 exists:foo%.sbl.example.com",
      "v=spf1 exists:foo.example.com%",
      "v=spf1 a:%{a}.example.com",         // not a macro letter
      "v=spf1 a:%{d0}.example.com",        // zero parts
      "v=spf1 a:%{d|}.example.com",        // '|' is no delimiter
      "v=spf1 a:%{d.example.com",          // unterminated
      "v=spf1 -all exp=%{r}.example.com",  // c, r, t only in explanation text
      "v=spf1 exists:%{c}.example.com",
      "v=spf1 exists:%{t}.example.com",
      "v=spf1 foo=%abc",
      "v=spf1 a:ctrl.example.com\rptr -all",  // only SP separates terms
      "v=spf1 ip4:192.0.2.5\n include:x.example.com",
      "v=spf1 a:foo.example.com\x7f",
      "v=spf1 a:\xef\xbb\xbfgarbage.example.net -all",
  };
  for (const char* r : invalid) {
    const RecordCheck c = check_record(r, false);
    EXPECT_FALSE(c.ok) << r;
    if (!c.ok) {
      EXPECT_FALSE(c.error.empty()) << r;
    }
  }
  EXPECT_FALSE(check_record(std::string("v=spf1 a:foo.example.com\0", 25), false).ok);  // NUL inside
}

TEST(RecordSyntax, GivesLibspf2ARecordItCanRepresent) {
  struct Case {
    const char* record;
    bool ipv6;
    const char* want;
  };
  const std::string any(kAnyAddressSuffix);
  const Case cases[] = {
      {"v=spf1 -all", false, "v=spf1 -all"},
      {"v=spf1  a   -all ", false, "v=spf1 a -all"},
      // /0 networks: two halves cover every address of the family.
      {"v=spf1 ip4:1.1.1.1/0 -all", false, "v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/1 -all"},
      {"v=spf1 -ip6:::1.1.1.1/0", true, "v=spf1 -ip6:::/1 -ip6:8000::/1"},
      // a/mx /0 of the client's family: "has any address"; the other family's length is dropped.
      {"v=spf1 a/0 -all", false, "v=spf1 a:%{d}.cidr0.chainmail.invalid -all"},
      {"v=spf1 a/0 -all", true, "v=spf1 a -all"},
      {"v=spf1 a//0 -all", false, "v=spf1 a -all"},
      {"v=spf1 ~a:x.example.//0", true, "v=spf1 ~a:x.example.cidr0.chainmail.invalid"},
      {"v=spf1 mx:x.example/24//0", false, "v=spf1 mx:x.example/24"},
      {"v=spf1 mx:x.example/0//64", true, "v=spf1 mx:x.example//64"},
      {"v=spf1 mx/0//0", false, "v=spf1 mx:%{d}.cidr0.chainmail.invalid"},
      // redirect= runs after the mechanisms, and never when there is an "all"; unknown modifiers go.
      {"v=spf1 redirect=x.example ip4:1.2.3.4", false, "v=spf1 ip4:1.2.3.4 redirect=x.example"},
      {"v=spf1 redirect=x.example ~all", false, "v=spf1 ~all"},
      {"v=spf1 exp=e.example moo=cow a -all", false, "v=spf1 a -all exp=e.example"},
  };
  for (const auto& c : cases) {
    const RecordCheck r = check_record(c.record, c.ipv6);
    ASSERT_TRUE(r.ok) << c.record << ": " << r.error;
    EXPECT_EQ(r.for_libspf2, c.want) << c.record << (c.ipv6 ? " (IPv6 client)" : " (IPv4 client)");
  }
  EXPECT_EQ(any, ".cidr0.chainmail.invalid");
}

TEST(RecordSyntax, ExplanationText) {
  EXPECT_TRUE(valid_explanation("See http://example.com/why.html?s=%{S} for %{i} at %{t} via %{r} (%{c})"));
  EXPECT_TRUE(valid_explanation("Congratulations!  That was tricky."));
  EXPECT_TRUE(valid_explanation(""));
  EXPECT_FALSE(valid_explanation("The %{x}-files."));
  EXPECT_FALSE(valid_explanation("100%"));
  EXPECT_FALSE(
      valid_explanation("\xef\xbb\xbf"
                        "Explanation"));
  EXPECT_FALSE(valid_explanation("tab\there"));
}

MacroValues rfc_example(bool ipv6) {
  // RFC 7208 7.4: sender strong-bad@email.example.com, client 192.0.2.3 or 2001:db8::cb01.
  MacroValues v;
  v.sender = "strong-bad@email.example.com";
  v.local_part = "strong-bad";
  v.sender_domain = "email.example.com";
  v.domain = "email.example.com";
  v.ip = ipv6 ? "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1" : "192.0.2.3";
  v.ip_pretty = ipv6 ? "2001:db8::cb01" : "192.0.2.3";
  v.ip_version = ipv6 ? "ip6" : "in-addr";
  v.helo = "mx.example.org";
  v.receiver = "receiver.example";
  v.time = "1700000000";
  return v;
}

TEST(RecordSyntax, ExpandsTheRfcExamples) {
  struct Case {
    const char* text;
    const char* want;
  };
  const Case cases[] = {
      {"%{s}", "strong-bad@email.example.com"},
      {"%{o}", "email.example.com"},
      {"%{d}", "email.example.com"},
      {"%{d4}", "email.example.com"},
      {"%{d3}", "email.example.com"},
      {"%{d2}", "example.com"},
      {"%{d1}", "com"},
      {"%{dr}", "com.example.email"},
      {"%{d2r}", "example.email"},
      {"%{l}", "strong-bad"},
      {"%{l-}", "strong.bad"},
      {"%{lr}", "strong-bad"},
      {"%{lr-}", "bad.strong"},
      {"%{l1r-}", "strong"},
      {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
      {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
      {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
      {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
      {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
      {"%{c} %{h} %{r} %{t}", "192.0.2.3 mx.example.org receiver.example 1700000000"},
      {"100%% %_%-", "100%  %20"},
      {"%{S}", "strong-bad%40email.example.com"},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(valid_explanation(c.text)) << c.text;
    EXPECT_EQ(expand_explanation(c.text, rfc_example(false), 1000), c.want) << c.text;
  }
  EXPECT_EQ(expand_explanation("%{ir}.%{v}._spf.%{d2}", rfc_example(true), 1000),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
  EXPECT_EQ(expand_explanation("%{c}", rfc_example(true), 1000), "2001:db8::cb01");
}

TEST(RecordSyntax, UrlEscapesUpperCaseMacrosAndLooksUpPOnlyWhenUsed) {
  MacroValues v = rfc_example(false);
  v.local_part = "~jack&jill=up-a_b3.c";
  int lookups = 0;
  v.validated_name = [&] {
    ++lookups;
    return std::string("mx.example.com");
  };
  EXPECT_EQ(expand_explanation("l=%{L}", v, 1000), "l=~jack%26jill%3Dup-a_b3.c");
  EXPECT_EQ(lookups, 0);
  EXPECT_EQ(expand_explanation("from %{p} (%{p2})", v, 1000), "from mx.example.com (example.com)");
  EXPECT_EQ(lookups, 1);
  EXPECT_EQ(expand_explanation("%{l}%{l}%{l}", v, 10).size(), 10u);  // bounded
}

}  // namespace
}  // namespace chainmail::spf
