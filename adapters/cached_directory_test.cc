#include "adapters/cached_directory.h"

#include <gtest/gtest.h>

#include <map>

namespace chainmail {
namespace {

// Answers from a script and counts the questions.
class ScriptedDirectory : public Directory {
 public:
  std::map<std::string, Lookup<EntryPtr>, std::less<>> answers;
  int calls = 0;

  Lookup<EntryPtr> answer(std::string_view key) {
    ++calls;
    const auto it = answers.find(key);
    return it == answers.end() ? Lookup<EntryPtr>::not_found() : it->second;
  }
  Lookup<EntryPtr> user_by_mail(std::string_view a) override { return answer(a); }
  Lookup<EntryPtr> group_by_name(std::string_view n) override { return answer(n); }
  Lookup<EntryPtr> entry_by_dn(std::string_view dn) override { return answer(dn); }
};

// Appended piecewise: GCC 12 warns falsely (-Wrestrict, GCC bug 105651) on "literal" + to_string() + "...".
std::string numbered_address(int i) {
  std::string s = "u";
  s += std::to_string(i);
  s += "@pydis.wtf";
  return s;
}

class CachedDirectoryTest : public ::testing::Test {
 protected:
  std::chrono::steady_clock::time_point now{};
  ScriptedDirectory inner;
  CachedDirectory make(std::size_t max_entries = 1000) {
    return CachedDirectory(inner,
                           CacheOptions{max_entries, std::chrono::seconds(60), std::chrono::seconds(10)},
                           [this] { return now; });
  }
};

TEST_F(CachedDirectoryTest, FoundIsReusedUntilItsTtl) {
  inner.answers.emplace("alice@pydis.wtf", Lookup<EntryPtr>::found(std::make_shared<const Entry>(
                                               Entry{"uid=alice", "alice", {}, {}, {}, false, true})));
  auto cache = make();
  EXPECT_TRUE(cache.user_by_mail("alice@pydis.wtf").is_found());
  EXPECT_TRUE(cache.user_by_mail("ALICE@pydis.wtf").is_found()) << "mail matches case-insensitively";
  EXPECT_EQ(inner.calls, 1);
  now += std::chrono::seconds(59);
  cache.user_by_mail("alice@pydis.wtf");
  EXPECT_EQ(inner.calls, 1);
  now += std::chrono::seconds(2);
  cache.user_by_mail("alice@pydis.wtf");
  EXPECT_EQ(inner.calls, 2);
}

TEST_F(CachedDirectoryTest, NotFoundHasItsOwnTtl) {
  auto cache = make();
  EXPECT_TRUE(cache.user_by_mail("nobody@pydis.wtf").is_not_found());
  now += std::chrono::seconds(9);
  cache.user_by_mail("nobody@pydis.wtf");
  EXPECT_EQ(inner.calls, 1);
  now += std::chrono::seconds(2);
  cache.user_by_mail("nobody@pydis.wtf");
  EXPECT_EQ(inner.calls, 2);
}

TEST_F(CachedDirectoryTest, TroubleIsNeverCached) {
  inner.answers.emplace("devops", Lookup<EntryPtr>::trouble(Trouble::temporary("server down")));
  auto cache = make();
  EXPECT_TRUE(cache.group_by_name("devops").is_trouble());
  EXPECT_TRUE(cache.group_by_name("devops").is_trouble());
  EXPECT_EQ(inner.calls, 2);
}

TEST_F(CachedDirectoryTest, KindsOfLookupDoNotShareKeys) {
  auto cache = make();
  cache.user_by_mail("x");
  cache.group_by_name("x");
  cache.entry_by_dn("x");
  EXPECT_EQ(inner.calls, 3);
}

TEST_F(CachedDirectoryTest, BatchesAskOnlyForWhatIsMissing) {
  inner.answers.emplace("uid=a", Lookup<EntryPtr>::found(std::make_shared<const Entry>()));
  inner.answers.emplace("uid=t", Lookup<EntryPtr>::trouble(Trouble::temporary("down")));
  auto cache = make();
  cache.entry_by_dn("uid=a");
  EXPECT_EQ(inner.calls, 1);
  const std::vector<std::string> dns = {"uid=a", "uid=b", "uid=t"};
  auto got = cache.entries_by_dn(dns);
  ASSERT_EQ(got.size(), 3U);
  EXPECT_TRUE(got[0].is_found());
  EXPECT_TRUE(got[1].is_not_found());
  EXPECT_TRUE(got[2].is_trouble());
  EXPECT_EQ(inner.calls, 3) << "uid=a came from the cache";
  got = cache.entries_by_dn(dns);
  EXPECT_EQ(inner.calls, 4) << "only the trouble is asked again";
  EXPECT_TRUE(got[2].is_trouble());
}

TEST_F(CachedDirectoryTest, SizeIsBounded) {
  auto cache = make(64);
  for (int i = 0; i < 1000; ++i) cache.user_by_mail(numbered_address(i));
  EXPECT_LE(cache.size(), 64U);
  EXPECT_GT(cache.size(), 0U);
}

TEST_F(CachedDirectoryTest, RecentlyUsedSurvivesEviction) {
  auto cache = make(16);  // one entry per shard
  cache.user_by_mail("keep@pydis.wtf");
  for (int i = 0; i < 200; ++i) cache.user_by_mail(numbered_address(i));
  const int before = inner.calls;
  cache.user_by_mail("keep@pydis.wtf");
  EXPECT_EQ(inner.calls, before + 1) << "with one slot per shard the old key was evicted";
}

}  // namespace
}  // namespace chainmail
