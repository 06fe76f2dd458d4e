#include "core/crypto/key_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>

#include "core/crypto/temp_dir_for_test.h"

namespace agora::crypto {
namespace {

namespace fs = std::filesystem;

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_mode & 0777;
}

TEST(EnsurePrivateDir, CreatesNestedDirectoryWithMode0700) {
  TempDirForTest tmp;
  const fs::path dir = tmp.path() / "a" / "b";
  ASSERT_TRUE(EnsurePrivateDir(dir).ok());
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_TRUE(EnsurePrivateDir(dir).ok());  // already there
}

TEST(EnsurePrivateDir, FailsWhenPathIsAFile) {
  TempDirForTest tmp;
  ASSERT_TRUE(WriteFileAtomic(tmp.path() / "f", "x").ok());
  Status s = EnsurePrivateDir(tmp.path() / "f");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInternal);
}

TEST(WriteFileAtomic, WritesMode0600AndReplaces) {
  TempDirForTest tmp;
  const fs::path file = tmp.path() / "key";
  ASSERT_TRUE(WriteFileAtomic(file, "first").ok());
  EXPECT_EQ(ModeOf(file), 0600u);
  ASSERT_TRUE(WriteFileAtomic(file, std::string("sec\0ond", 7)).ok());
  Result<std::string> back = ReadWholeFile(file);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, std::string("sec\0ond", 7));
  EXPECT_EQ(ModeOf(file), 0600u);
  // No temp files left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 1);
}

TEST(WriteFileAtomic, FailsWithInternalWhenDirectoryIsMissing) {
  TempDirForTest tmp;
  Status s = WriteFileAtomic(tmp.path() / "missing" / "key", "x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInternal);
}

TEST(ReadWholeFile, FailsWithNotFoundForMissingFile) {
  TempDirForTest tmp;
  Result<std::string> r = ReadWholeFile(tmp.path() / "nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

TEST(IsValidKeyId, AcceptsOnlySafeCharacters) {
  EXPECT_TRUE(IsValidKeyId("k1800000000-3fa2c91b"));
  EXPECT_TRUE(IsValidKeyId("A_z-9"));
  EXPECT_FALSE(IsValidKeyId(""));
  EXPECT_FALSE(IsValidKeyId("a.b"));
  EXPECT_FALSE(IsValidKeyId("../x"));
  EXPECT_FALSE(IsValidKeyId("a b"));
  EXPECT_FALSE(IsValidKeyId(std::string(65, 'a')));
}

TEST(NewKeyId, IsValidTimestampedAndUnique) {
  const TimePoint t{std::chrono::seconds(1'800'000'000)};
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    const std::string id = NewKeyId(t);
    EXPECT_TRUE(IsValidKeyId(id)) << id;
    EXPECT_EQ(id.rfind("k1800000000-", 0), 0u) << id;
    EXPECT_TRUE(ids.insert(id).second);
  }
}

}  // namespace
}  // namespace agora::crypto
