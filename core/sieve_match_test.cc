// sieve_match_test.cc - unit tests for core/sieve_match: which Authentication-Results field counts and what
// it says per method (forgeries below ours, other authserv-ids, unparsable fields, no field at all), and the
// group/alias names on a route to a mailbox (table-driven).
#include "core/sieve_match.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace chainmail::sieve {
namespace {

using Strings = std::vector<std::string>;

constexpr std::string_view kOurs =
    "mx.pydis.wtf;\n\tspf=pass smtp.mailfrom=a@example.net;\n\tdkim=fail header.d=example.net;\n"
    "\tdkim=pass header.d=mail.example.net;\n\tdmarc=fail (p=reject) header.from=example.net";
constexpr std::string_view kForgedOurs = "mx.pydis.wtf; spf=fail; dkim=pass; dmarc=pass";
constexpr std::string_view kOther = "mx.elsewhere.example; spf=neutral; dkim=neutral; dmarc=pass";

AuthresResults lookup(std::vector<std::string_view> fields, AuthMethod m) {
  return authres_results(fields, "mx.pydis.wtf", m);
}

TEST(AuthresResults, TopmostFieldOfOursCounts) {
  struct Case {
    AuthMethod method;
    Strings want;
  };
  const Case cases[] = {
      {AuthMethod::spf, {"pass"}},
      {AuthMethod::dkim, {"fail", "pass"}},
      {AuthMethod::dmarc, {"fail"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(auth_method_name(c.method)));
    // Another authserv-id above ours and a forgery of ours below it are both ignored.
    const AuthresResults r = lookup({kOther, kOurs, kForgedOurs}, c.method);
    EXPECT_EQ(r.field, AuthresResults::Field::ours);
    EXPECT_EQ(r.results, c.want);
  }
}

TEST(AuthresResults, AuthservIdComparesCaseInsensitively) {
  const AuthresResults r =
      authres_results(std::vector<std::string_view>{kOurs}, "MX.Pydis.WTF", AuthMethod::spf);
  EXPECT_EQ(r.results, Strings{"pass"});
}

TEST(AuthresResults, OtherAuthservIdsAloneGiveNothing) {
  const AuthresResults r = lookup({kOther, "mx.pydis.wtf.evil.example; dmarc=pass"}, AuthMethod::dmarc);
  EXPECT_EQ(r.field, AuthresResults::Field::none);
  EXPECT_TRUE(r.results.empty());
}

TEST(AuthresResults, NoFieldsGiveNothing) {
  const AuthresResults r = lookup({}, AuthMethod::dmarc);
  EXPECT_EQ(r.field, AuthresResults::Field::none);
  EXPECT_TRUE(r.results.empty());
}

TEST(AuthresResults, MethodMissingFromOursGivesNothing) {
  const AuthresResults r =
      lookup({"mx.pydis.wtf; spf=softfail smtp.mailfrom=x@y.example", kForgedOurs}, AuthMethod::dmarc);
  EXPECT_EQ(r.field, AuthresResults::Field::ours);
  EXPECT_TRUE(r.results.empty());
}

TEST(AuthresResults, NoneFieldGivesNothing) {
  const AuthresResults r = lookup({"mx.pydis.wtf; none", kForgedOurs}, AuthMethod::spf);
  EXPECT_EQ(r.field, AuthresResults::Field::ours);
  EXPECT_TRUE(r.results.empty());
}

TEST(AuthresResults, UnparsableFieldOfOursIsNotReplacedByALowerOne) {
  const AuthresResults r = lookup({"mx.pydis.wtf; dmarc", kForgedOurs}, AuthMethod::dmarc);
  EXPECT_EQ(r.field, AuthresResults::Field::unparsable);
  EXPECT_TRUE(r.results.empty());
}

TEST(AuthresResults, ResultsAreLowerCase) {
  const AuthresResults r = lookup({"mx.pydis.wtf; DMARC=PASS header.from=example.net"}, AuthMethod::dmarc);
  EXPECT_EQ(r.results, Strings{"pass"});
}

TEST(AuthresResults, FieldsBeyondTheBoundAreNotRead) {
  std::vector<std::string_view> fields(kMaxAuthresFields, kOther);
  fields.push_back(kOurs);
  EXPECT_EQ(lookup(fields, AuthMethod::spf).field, AuthresResults::Field::none);
  fields.erase(fields.begin());
  EXPECT_EQ(lookup(fields, AuthMethod::spf).results, Strings{"pass"});
}

TEST(OurAuthservId, DefaultsToTheMainDomain) {
  Config c;
  c.domains.main = "pydis.wtf";
  EXPECT_EQ(our_authserv_id(c), "pydis.wtf");
  c.milter.authserv_id = "mx.pydis.wtf";
  EXPECT_EQ(our_authserv_id(c), "mx.pydis.wtf");
}

Target mailbox(std::string address, std::vector<Step> path) {
  return Target{TargetKind::mailbox, std::move(address), std::move(path)};
}

RouteResult routed(std::vector<Target> targets) {
  RouteResult r;
  r.outcome = Outcome::routed;
  r.targets = std::move(targets);
  return r;
}

TEST(RouteNames, NamesOnThePathToThisMailbox) {
  // postmaster@ -> alias postmaster -> group devops -> (nested group ops by DN) -> alice
  const RouteResult r = routed({
      mailbox("bob@localhost", {{Rule::alias, "postmaster@pydis.wtf", "postmaster = devops"},
                                {Rule::group, "devops@pydis.wtf", "cn=devops"},
                                {Rule::user, "bob@pydis.wtf", "uid=bob"}}),
      mailbox("alice@localhost", {{Rule::alias, "Postmaster+x@pydis.com", "postmaster = devops"},
                                  {Rule::group, "devops@pydis.wtf", "cn=devops"},
                                  {Rule::group, "cn=ops,cn=groups,cn=accounts,dc=example", "nested group"},
                                  {Rule::member, "alice@pydis.wtf", "uid=alice"},
                                  {Rule::user, "alice@pydis.wtf", "uid=alice"}}),
  });
  struct Case {
    std::string_view user;
    RouteKind kind;
    Strings want;
  };
  const Case cases[] = {
      {"alice", RouteKind::any, {"postmaster", "devops", "ops"}},
      {"ALICE+tag", RouteKind::group, {"devops", "ops"}},
      {"alice", RouteKind::alias, {"postmaster"}},
      {"bob", RouteKind::group, {"devops"}},
      {"carol", RouteKind::any, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.user));
    std::string user(c.user);
    // The caller passes the mailbox user without detail, as the LMTP recipient names it.
    if (const auto plus = user.find('+'); plus != std::string::npos) user.resize(plus);
    EXPECT_EQ(route_names(r, user, "localhost", "+", c.kind), c.want);
  }
}

TEST(RouteNames, DirectDeliveryAndOtherDomainsGiveNothing) {
  const RouteResult direct =
      routed({mailbox("alice@localhost", {{Rule::user, "alice@pydis.wtf", "uid=alice"}})});
  EXPECT_TRUE(route_names(direct, "alice", "localhost", "+", RouteKind::any).empty());
  const RouteResult elsewhere =
      routed({mailbox("alice@other.example", {{Rule::group, "devops@pydis.wtf", "cn=devops"}})});
  EXPECT_TRUE(route_names(elsewhere, "alice", "localhost", "+", RouteKind::any).empty());
}

TEST(RouteNames, UnroutedGivesNothing) {
  RouteResult r = routed({mailbox("alice@localhost", {{Rule::group, "devops@pydis.wtf", "cn=devops"}})});
  for (const Outcome o : {Outcome::unknown, Outcome::not_hosted, Outcome::invalid, Outcome::trouble}) {
    r.outcome = o;
    EXPECT_TRUE(route_names(r, "alice", "localhost", "+", RouteKind::any).empty());
  }
}

TEST(RouteNames, RepeatedNamesOnce) {
  const RouteResult r = routed({mailbox("alice@localhost", {{Rule::alias, "security@pydis.wtf", "security"},
                                                            {Rule::alias, "security@pydis.com", "security"},
                                                            {Rule::user, "alice@pydis.wtf", ""}})});
  EXPECT_EQ(route_names(r, "alice", "localhost", "+", RouteKind::alias), Strings{"security"});
}

}  // namespace
}  // namespace chainmail::sieve
