#include "core/crypto/aead.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/crypto/encoding.h"
#include "core/crypto/random.h"
#include "core/crypto/temp_dir_for_test.h"

namespace agora::crypto {
namespace {

namespace fs = std::filesystem;

Aead::Key MakeKey(std::string id) { return {std::move(id), RandomBytes(32)}; }

// Replaces the base64url blob of `sealed` with `f(blob)`.
template <class F>
std::string EditBlob(const std::string& sealed, F f) {
  const size_t dot = sealed.rfind('.');
  std::string blob = *Base64UrlDecode(sealed.substr(dot + 1));
  f(blob);
  return sealed.substr(0, dot + 1) + Base64UrlEncode(blob);
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_mode & 0777;
}

TEST(Aead, RoundTrips) {
  const Aead aead({MakeKey("k1")});
  for (const std::string& text : {std::string(), std::string("alice@example.com"),
                                  std::string(100000, 'x'), std::string("\0\1\2", 3)}) {
    const std::string sealed = aead.Encrypt(text, "users.email:42");
    Result<std::string> opened = aead.Decrypt(sealed, "users.email:42");
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(*opened, text);
  }
}

TEST(Aead, SealedFormatNamesVersionAndKey) {
  const Aead aead({MakeKey("k1")});
  const std::string sealed = aead.Encrypt("hello", "");
  ASSERT_EQ(sealed.rfind("v1.k1.", 0), 0u) << sealed;
  std::optional<std::string> blob = Base64UrlDecode(sealed.substr(6));
  ASSERT_TRUE(blob.has_value());
  EXPECT_EQ(blob->size(), 12u + 5u + 16u);
}

TEST(Aead, UsesAFreshNonceEachTime) {
  const Aead aead({MakeKey("k1")});
  EXPECT_NE(aead.Encrypt("same", "ad"), aead.Encrypt("same", "ad"));
}

TEST(Aead, DecryptRefusesAnyFlippedByte) {
  const Aead aead({MakeKey("k1")});
  const std::string sealed = aead.Encrypt("personal data", "ad");
  const size_t blob_size = Base64UrlDecode(sealed.substr(sealed.rfind('.') + 1))->size();
  for (size_t i = 0; i < blob_size; ++i) {  // nonce, ciphertext and tag
    const std::string tampered = EditBlob(sealed, [&](std::string& b) { b[i] ^= 0x01; });
    Result<std::string> opened = aead.Decrypt(tampered, "ad");
    ASSERT_FALSE(opened.ok()) << i;
    EXPECT_EQ(opened.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(Aead, DecryptRefusesWrongAssociatedData) {
  const Aead aead({MakeKey("k1")});
  const std::string sealed = aead.Encrypt("personal data", "users.email:42");
  Result<std::string> opened = aead.Decrypt(sealed, "users.email:43");
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(aead.Decrypt(sealed, "").ok());
}

TEST(Aead, DecryptRefusesUnknownKeyId) {
  const Aead writer({MakeKey("k1")});
  const Aead reader({MakeKey("k2")});
  Result<std::string> opened = reader.Decrypt(writer.Encrypt("x", ""), "");
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kInvalidArgument);
}

TEST(Aead, DecryptRefusesSameIdWithOtherKeyBytes) {
  const Aead writer({MakeKey("k1")});
  const Aead reader({MakeKey("k1")});
  Result<std::string> opened = reader.Decrypt(writer.Encrypt("x", ""), "");
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kInvalidArgument);
}

TEST(Aead, DecryptRefusesMalformedInput) {
  const Aead aead({MakeKey("k1")});
  const std::string good = aead.Encrypt("x", "");
  const std::string blob = good.substr(good.rfind('.') + 1);
  for (const std::string& bad :
       {std::string(), std::string("v1"), std::string("v1.k1"), std::string("v1.k1."),
        "v2.k1." + blob, "v1.k1." + blob + "=", "v1.k1." + blob.substr(0, 20),
        std::string("v1.k1.!!!!"), "V1.k1." + blob, "v1..k1." + blob}) {
    Result<std::string> opened = aead.Decrypt(bad, "");
    ASSERT_FALSE(opened.ok()) << bad;
    EXPECT_EQ(opened.error().code, ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(Aead, EncryptsWithFirstKeyAndDecryptsWithAny) {
  Aead::Key old_key{"old", RandomBytes(32)};
  const Aead before({old_key});
  const Aead after({MakeKey("new"), old_key});
  const std::string old_sealed = before.Encrypt("kept", "ad");
  EXPECT_EQ(after.active_key_id(), "new");
  EXPECT_EQ(after.Encrypt("x", "").rfind("v1.new.", 0), 0u);
  Result<std::string> opened = after.Decrypt(old_sealed, "ad");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "kept");
}

TEST(AeadLoadOrCreate, CreatesPrivateKeyFileAndReloadsSameKey) {
  TempDirForTest tmp;
  const fs::path dir = tmp.path() / "secrets" / "nested";
  Result<Aead> first = Aead::LoadOrCreate(dir);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->active_key_id().rfind("k", 0), 0u);
  EXPECT_EQ(ModeOf(dir / "aead-keys.json"), 0600u);
  EXPECT_EQ(ModeOf(dir), 0700u);

  const std::string sealed = first->Encrypt("alice", "ad");
  Result<Aead> second = Aead::LoadOrCreate(dir);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->active_key_id(), first->active_key_id());
  Result<std::string> opened = second->Decrypt(sealed, "ad");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "alice");
}

TEST(AeadLoadOrCreate, RotationKeepsDecryptingOldCiphertexts) {
  TempDirForTest tmp;
  Result<Aead> first = Aead::LoadOrCreate(tmp.path());
  ASSERT_TRUE(first.ok());
  const std::string old_sealed = first->Encrypt("old data", "ad");

  ASSERT_TRUE(Aead::RotateInDir(tmp.path()).ok());
  Result<Aead> rotated = Aead::LoadOrCreate(tmp.path());
  ASSERT_TRUE(rotated.ok());
  EXPECT_NE(rotated->active_key_id(), first->active_key_id());
  EXPECT_EQ(ModeOf(tmp.path() / "aead-keys.json"), 0600u);

  Result<std::string> opened = rotated->Decrypt(old_sealed, "ad");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "old data");
  const std::string new_sealed = rotated->Encrypt("new data", "ad");
  EXPECT_EQ(new_sealed.rfind("v1." + rotated->active_key_id() + ".", 0), 0u);
  // The old instance does not know the new key.
  Result<std::string> refused = first->Decrypt(new_sealed, "ad");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);

  ASSERT_TRUE(Aead::RotateInDir(tmp.path()).ok());
  Result<Aead> twice = Aead::LoadOrCreate(tmp.path());
  ASSERT_TRUE(twice.ok());
  EXPECT_TRUE(twice->Decrypt(old_sealed, "ad").ok());
  EXPECT_TRUE(twice->Decrypt(new_sealed, "ad").ok());
}

TEST(AeadLoadOrCreate, FailsWithInternalOnCorruptFile) {
  TempDirForTest tmp;
  for (const std::string& content :
       {std::string("not json"), std::string(R"({"version":1,"keys":[]})"),
        std::string(R"({"version":2,"keys":[{"id":"k","key":"AAAA"}]})"),
        std::string(R"({"version":1,"keys":[{"id":"k","key":"AAAA"}]})"),
        std::string(R"({"version":1,"keys":[{"id":"a.b","key":")") + Base64UrlEncode(RandomBytes(32)) +
            R"("}]})"}) {
    {
      std::FILE* f = std::fopen((tmp.path() / "aead-keys.json").c_str(), "w");
      ASSERT_NE(f, nullptr);
      std::fputs(content.c_str(), f);
      std::fclose(f);
    }
    Result<Aead> aead = Aead::LoadOrCreate(tmp.path());
    ASSERT_FALSE(aead.ok()) << content;
    EXPECT_EQ(aead.error().code, ErrorCode::kInternal);
  }
}

}  // namespace
}  // namespace agora::crypto
