#include "core/crypto/jws.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "core/crypto/encoding.h"
#include "core/crypto/hash.h"
#include "core/crypto/temp_dir_for_test.h"

namespace agora::crypto {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using std::chrono::hours;
using std::chrono::seconds;

const json::object kClaims{{"sub", "user-1"}, {"iss", "agora"}, {"aud", "agora-api"},
                           {"exp", 1'800'000'900}, {"iat", 1'800'000'000}};

std::string Str(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : "<" + json::serialize(v) + ">";
}

std::string B64Json(const json::value& v) { return Base64UrlEncode(json::serialize(v)); }

// A token with any header and payload, signed by `key` over the usual input.
std::string SignRaw(const SigningKey& key, const json::value& header, const json::value& payload) {
  const std::string input = B64Json(header) + "." + B64Json(payload);
  return input + "." + Base64UrlEncode(key.Sign(input));
}

struct Parts {
  std::string header, payload, sig;
};
Parts Split(const std::string& token) {
  const size_t a = token.find('.');
  const size_t b = token.find('.', a + 1);
  return {token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
}

void ExpectRefused(const Result<json::object>& r, std::string_view message) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
  if (!message.empty()) {
    EXPECT_EQ(r.error().message, message);
  }
}

// The ring's active private key, read back from its pem under `dir`, to
// forge tokens with a valid signature but odd content.
SigningKey ActiveKeyOnDisk(const fs::path& dir, const KeyRing& ring) {
  std::ifstream in(dir / "jwt-keys" / (ring.active_kid() + ".pem"));
  Result<SigningKey> key =
      SigningKey::FromPem(ring.active_kid(), std::string(std::istreambuf_iterator<char>(in), {}));
  if (!key.ok()) {
    std::abort();
  }
  return std::move(key).value();
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_mode & 0777;
}

// --- SigningKey ---

TEST(SigningKey, SignsAndVerifies) {
  const SigningKey key = SigningKey::Generate("kid1");
  const std::string sig = key.Sign("message");
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(key.Verify("message", sig));
  EXPECT_FALSE(key.Verify("messagE", sig));
  EXPECT_FALSE(key.Verify("message", sig.substr(0, 63)));
  EXPECT_FALSE(SigningKey::Generate("kid1").Verify("message", sig));
}

TEST(SigningKey, PemRoundTripKeepsTheKey) {
  const SigningKey key = SigningKey::Generate("kid1");
  const std::string pem = key.PrivatePem();
  EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  Result<SigningKey> back = SigningKey::FromPem("kid1", pem);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->kid(), "kid1");
  EXPECT_TRUE(back->Verify("m", key.Sign("m")));
  EXPECT_EQ(json::serialize(back->PublicJwk()), json::serialize(key.PublicJwk()));
}

TEST(SigningKey, FromPemRefusesGarbageAndBadKid) {
  Result<SigningKey> garbage = SigningKey::FromPem("kid1", "not a pem");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ErrorCode::kInvalidArgument);
  Result<SigningKey> bad_kid = SigningKey::FromPem("../kid", SigningKey::Generate("k").PrivatePem());
  ASSERT_FALSE(bad_kid.ok());
  EXPECT_EQ(bad_kid.error().code, ErrorCode::kInvalidArgument);
}

TEST(SigningKey, PublicJwkIsOkpEd25519) {
  const SigningKey key = SigningKey::Generate("kid1");
  const json::object jwk = key.PublicJwk();
  EXPECT_EQ(Str(jwk.at("kty")), "OKP");
  EXPECT_EQ(Str(jwk.at("crv")), "Ed25519");
  EXPECT_EQ(Str(jwk.at("kid")), "kid1");
  EXPECT_EQ(Str(jwk.at("alg")), "EdDSA");
  EXPECT_EQ(Str(jwk.at("use")), "sig");
  EXPECT_EQ(Base64UrlDecode(jwk.at("x").as_string())->size(), 32u);
  EXPECT_FALSE(jwk.contains("d"));
}

// --- SignJwt / VerifyJwt ---

TEST(SignJwt, WritesEdDsaHeaderWithActiveKid) {
  auto ring = KeyRing::InMemoryForTest();
  const Parts parts = Split(ring->SignJwt(kClaims));
  const json::value header = json::parse(*Base64UrlDecode(parts.header));
  EXPECT_EQ(Str(header.at("alg")), "EdDSA");
  EXPECT_EQ(Str(header.at("typ")), "JWT");
  EXPECT_EQ(Str(header.at("kid")), ring->active_kid());
}

TEST(VerifyJwt, ReturnsClaimsOfAValidToken) {
  auto ring = KeyRing::InMemoryForTest();
  Result<json::object> claims = ring->VerifyJwt(ring->SignJwt(kClaims));
  ASSERT_TRUE(claims.ok()) << claims.error().message;
  EXPECT_EQ(*claims, kClaims);
}

TEST(VerifyJwt, RefusesTamperedPayload) {
  auto ring = KeyRing::InMemoryForTest();
  Parts p = Split(ring->SignJwt(kClaims));
  json::object evil = kClaims;
  evil["sub"] = "admin";
  ExpectRefused(ring->VerifyJwt(p.header + "." + B64Json(evil) + "." + p.sig),
                "token signature is invalid");
}

TEST(VerifyJwt, RefusesTamperedSignature) {
  auto ring = KeyRing::InMemoryForTest();
  Parts p = Split(ring->SignJwt(kClaims));
  std::string sig = *Base64UrlDecode(p.sig);
  sig[10] ^= 0x01;
  ExpectRefused(ring->VerifyJwt(p.header + "." + p.payload + "." + Base64UrlEncode(sig)),
                "token signature is invalid");
  ExpectRefused(ring->VerifyJwt(p.header + "." + p.payload + "." + p.sig.substr(0, 40)),
                "token signature is invalid");
  ExpectRefused(ring->VerifyJwt(p.header + "." + p.payload + "." + p.sig + "="),
                "token signature is invalid");
}

TEST(VerifyJwt, RefusesTamperedHeader) {
  auto ring = KeyRing::InMemoryForTest();
  Parts p = Split(ring->SignJwt(kClaims));
  const json::object header{{"alg", "EdDSA"}, {"typ", "at+jwt"}, {"kid", ring->active_kid()}};
  ExpectRefused(ring->VerifyJwt(B64Json(header) + "." + p.payload + "." + p.sig),
                "token signature is invalid");
}

TEST(VerifyJwt, RefusesAlgNone) {
  auto ring = KeyRing::InMemoryForTest();
  const json::object header{{"alg", "none"}, {"typ", "JWT"}, {"kid", ring->active_kid()}};
  const std::string unsigned_token = B64Json(header) + "." + B64Json(kClaims) + ".";
  ExpectRefused(ring->VerifyJwt(unsigned_token), "");
  // Even with a (valid EdDSA) signature attached, "none" is refused.
  Parts p = Split(ring->SignJwt(kClaims));
  ExpectRefused(ring->VerifyJwt(B64Json(header) + "." + p.payload + "." + p.sig),
                "token algorithm is not accepted");
  const json::object no_alg{{"typ", "JWT"}, {"kid", ring->active_kid()}};
  ExpectRefused(ring->VerifyJwt(B64Json(no_alg) + "." + p.payload + "." + p.sig),
                "token algorithm is not accepted");
}

TEST(VerifyJwt, RefusesAlgHs256KeyedWithPublicKey) {
  auto ring = KeyRing::InMemoryForTest();
  // The classic confusion: an HMAC "signed" with the public key as secret.
  const std::string public_x = std::string(ring->Jwks().at("keys").at(0).at("x").as_string());
  const json::object header{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", ring->active_kid()}};
  const std::string input = B64Json(header) + "." + B64Json(kClaims);
  for (const std::string& secret : {public_x, *Base64UrlDecode(public_x)}) {
    ExpectRefused(ring->VerifyJwt(input + "." + Base64UrlEncode(HmacSha256(secret, input))),
                  "token algorithm is not accepted");
  }
}

TEST(VerifyJwt, RefusesCritHeader) {
  TempDirForTest tmp;
  auto ring = KeyRing::LoadOrCreate(tmp.path());
  ASSERT_TRUE(ring.ok());
  const SigningKey key = ActiveKeyOnDisk(tmp.path(), **ring);
  const json::object header{{"alg", "EdDSA"}, {"kid", key.kid()}, {"crit", json::array{"exp"}}};
  ExpectRefused((*ring)->VerifyJwt(SignRaw(key, header, kClaims)),
                "token header has unsupported critical parameters");
  // Same key, no crit: accepted, so the refusal above is the header's.
  const json::object plain{{"alg", "EdDSA"}, {"kid", key.kid()}};
  EXPECT_TRUE((*ring)->VerifyJwt(SignRaw(key, plain, kClaims)).ok());
}

TEST(VerifyJwt, RefusesMissingOrUnknownKid) {
  auto ring = KeyRing::InMemoryForTest();
  Parts p = Split(ring->SignJwt(kClaims));
  const json::object no_kid{{"alg", "EdDSA"}, {"typ", "JWT"}};
  ExpectRefused(ring->VerifyJwt(B64Json(no_kid) + "." + p.payload + "." + p.sig),
                "token has no key id");
  const json::object numeric_kid{{"alg", "EdDSA"}, {"kid", 7}};
  ExpectRefused(ring->VerifyJwt(B64Json(numeric_kid) + "." + p.payload + "." + p.sig),
                "token has no key id");
  const json::object unknown{{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", "nope"}};
  ExpectRefused(ring->VerifyJwt(B64Json(unknown) + "." + p.payload + "." + p.sig),
                "token key id is unknown");
}

TEST(VerifyJwt, RefusesTokenFromAnotherKeyRing) {
  auto ring = KeyRing::InMemoryForTest();
  auto other = KeyRing::InMemoryForTest();
  ExpectRefused(ring->VerifyJwt(other->SignJwt(kClaims)), "token key id is unknown");
}

TEST(VerifyJwt, RefusesOtherKeyClaimingTheActiveKid) {
  auto ring = KeyRing::InMemoryForTest();
  const SigningKey impostor = SigningKey::Generate(ring->active_kid());
  const json::object header{{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", ring->active_kid()}};
  ExpectRefused(ring->VerifyJwt(SignRaw(impostor, header, kClaims)), "token signature is invalid");
}

TEST(VerifyJwt, RefusesTokensThatAreNotThreeBase64UrlParts) {
  auto ring = KeyRing::InMemoryForTest();
  const std::string good = ring->SignJwt(kClaims);
  Parts p = Split(good);
  for (const std::string& bad :
       {std::string(), std::string("."), std::string(".."), std::string("abc"),
        p.header + "." + p.payload, good + ".", good + ".x", "." + p.payload + "." + p.sig,
        p.header + ".." + p.sig, p.header + "." + p.payload + "."}) {
    ExpectRefused(ring->VerifyJwt(bad), "token is malformed");
  }
  ExpectRefused(ring->VerifyJwt("!!!." + p.payload + "." + p.sig), "token header is invalid");
}

TEST(VerifyJwt, RefusesHeaderThatIsNotJsonObject) {
  auto ring = KeyRing::InMemoryForTest();
  Parts p = Split(ring->SignJwt(kClaims));
  for (const std::string& header : {std::string("not json"), std::string("[1,2]"),
                                    std::string("\"EdDSA\""), std::string("{\"alg\":")}) {
    ExpectRefused(ring->VerifyJwt(Base64UrlEncode(header) + "." + p.payload + "." + p.sig),
                  "token header is invalid");
  }
}

TEST(VerifyJwt, RefusesPayloadThatIsNotJsonObject) {
  TempDirForTest tmp;
  auto ring = KeyRing::LoadOrCreate(tmp.path());
  ASSERT_TRUE(ring.ok());
  const SigningKey key = ActiveKeyOnDisk(tmp.path(), **ring);
  const json::object header{{"alg", "EdDSA"}, {"kid", key.kid()}};
  ExpectRefused((*ring)->VerifyJwt(SignRaw(key, header, json::array{1, 2})),
                "token payload is invalid");
  const std::string input = B64Json(header) + "." + Base64UrlEncode("not json");
  ExpectRefused((*ring)->VerifyJwt(input + "." + Base64UrlEncode(key.Sign(input))),
                "token payload is invalid");
}

// --- rotation ---

TEST(KeyRingRotate, OldTokensStillVerifyAndNewOnesUseNewKid) {
  auto ring = KeyRing::InMemoryForTest();
  const std::string old_kid = ring->active_kid();
  const std::string old_token = ring->SignJwt(kClaims);
  ASSERT_TRUE(ring->Rotate().ok());
  EXPECT_NE(ring->active_kid(), old_kid);
  EXPECT_TRUE(ring->VerifyJwt(old_token).ok());
  const std::string new_token = ring->SignJwt(kClaims);
  EXPECT_EQ(Str(json::parse(*Base64UrlDecode(Split(new_token).header)).at("kid")), ring->active_kid());
  EXPECT_TRUE(ring->VerifyJwt(new_token).ok());
}

TEST(KeyRingJwks, ListsActiveFirstThenVerificationKeys) {
  auto ring = KeyRing::InMemoryForTest();
  const std::string old_kid = ring->active_kid();
  ASSERT_TRUE(ring->Rotate().ok());
  const json::object jwks = ring->Jwks();
  const json::array& keys = jwks.at("keys").as_array();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(Str(keys[0].at("kid")), ring->active_kid());
  EXPECT_EQ(Str(keys[1].at("kid")), old_kid);
  for (const json::value& k : keys) {
    EXPECT_FALSE(k.as_object().contains("d"));
  }
}

TEST(KeyRingRetireOlderThan, DropsKeysOnlyAfterKeepFor) {
  ManualClock clock;
  auto ring = KeyRing::InMemoryForTest(clock);
  const std::string old_token = ring->SignJwt(kClaims);
  const TimePoint rotated_at = clock.Now();
  ASSERT_TRUE(ring->Rotate().ok());
  const std::string mid_token = ring->SignJwt(kClaims);

  ring->RetireOlderThan(rotated_at + hours(1) - seconds(1), hours(1));
  EXPECT_TRUE(ring->VerifyJwt(old_token).ok());

  ring->RetireOlderThan(rotated_at + hours(1), hours(1));
  ExpectRefused(ring->VerifyJwt(old_token), "token key id is unknown");
  EXPECT_TRUE(ring->VerifyJwt(mid_token).ok());
  EXPECT_EQ(ring->Jwks().at("keys").as_array().size(), 1u);
}

TEST(KeyRingRetireOlderThan, NeverDropsTheActiveKey) {
  auto ring = KeyRing::InMemoryForTest();
  const std::string token = ring->SignJwt(kClaims);
  ring->RetireOlderThan(std::chrono::system_clock::now() + hours(24 * 365), seconds(0));
  EXPECT_TRUE(ring->VerifyJwt(token).ok());
}

TEST(KeyRingRetireOlderThan, UsesEachKeysOwnRotationTime) {
  ManualClock clock;
  auto ring = KeyRing::InMemoryForTest(clock);
  const std::string first = ring->SignJwt(kClaims);
  ASSERT_TRUE(ring->Rotate().ok());  // first rotated out at T
  clock.Advance(hours(2));
  const std::string second = ring->SignJwt(kClaims);
  ASSERT_TRUE(ring->Rotate().ok());  // second rotated out at T+2h
  ring->RetireOlderThan(clock.Now() + hours(1) - seconds(1), hours(2));
  ExpectRefused(ring->VerifyJwt(first), "token key id is unknown");
  EXPECT_TRUE(ring->VerifyJwt(second).ok());
}

TEST(KeyRing, SignAndVerifyRunConcurrentlyWithRotate) {
  auto ring = KeyRing::InMemoryForTest();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < 3; ++i) {
    workers.emplace_back([&] {
      while (!stop) {
        if (!ring->VerifyJwt(ring->SignJwt(kClaims)).ok()) {
          ++failures;
        }
        (void)ring->Jwks();
      }
    });
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(ring->Rotate().ok());
  }
  stop = true;
  for (auto& t : workers) {
    t.join();
  }
  EXPECT_EQ(failures, 0);
}

// --- on disk ---

TEST(KeyRingLoadOrCreate, PersistsAndReloadsTheSameKid) {
  TempDirForTest tmp;
  auto first = KeyRing::LoadOrCreate(tmp.path());
  ASSERT_TRUE(first.ok()) << first.error().message;
  const std::string token = (*first)->SignJwt(kClaims);

  auto second = KeyRing::LoadOrCreate(tmp.path());
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ((*second)->active_kid(), (*first)->active_kid());
  EXPECT_TRUE((*second)->VerifyJwt(token).ok());
}

TEST(KeyRingLoadOrCreate, WritesPrivateFiles) {
  TempDirForTest tmp;
  const fs::path dir = tmp.path() / "data";
  auto ring = KeyRing::LoadOrCreate(dir);
  ASSERT_TRUE(ring.ok());
  ASSERT_TRUE((*ring)->Rotate().ok());
  const fs::path keys = dir / "jwt-keys";
  EXPECT_EQ(ModeOf(keys), 0700u);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(keys)) {
    EXPECT_EQ(ModeOf(entry.path()), 0600u) << entry.path();
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 4);  // two pems, active, rotation.json
}

TEST(KeyRingLoadOrCreate, ReloadsRotationState) {
  TempDirForTest tmp;
  ManualClock clock;
  auto ring = KeyRing::LoadOrCreate(tmp.path(), clock);
  ASSERT_TRUE(ring.ok());
  const std::string old_kid = (*ring)->active_kid();
  const std::string old_token = (*ring)->SignJwt(kClaims);
  const TimePoint rotated_at = clock.Now();
  ASSERT_TRUE((*ring)->Rotate().ok());
  const std::string new_kid = (*ring)->active_kid();

  clock.Advance(hours(5));  // the reload is later than the rotation
  auto reloaded = KeyRing::LoadOrCreate(tmp.path(), clock);
  ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
  EXPECT_EQ((*reloaded)->active_kid(), new_kid);
  EXPECT_TRUE((*reloaded)->VerifyJwt(old_token).ok());

  // The recorded rotation time, not the load time, counts.
  (*reloaded)->RetireOlderThan(rotated_at + hours(1), hours(1));
  ExpectRefused((*reloaded)->VerifyJwt(old_token), "token key id is unknown");
  EXPECT_FALSE(fs::exists(tmp.path() / "jwt-keys" / (old_kid + ".pem")));

  auto again = KeyRing::LoadOrCreate(tmp.path(), clock);
  ASSERT_TRUE(again.ok());
  ExpectRefused((*again)->VerifyJwt(old_token), "token key id is unknown");
  EXPECT_EQ((*again)->Jwks().at("keys").as_array().size(), 1u);
}

TEST(KeyRingLoadOrCreate, FailsWithInternalOnCorruptKeyFile) {
  TempDirForTest tmp;
  auto ring = KeyRing::LoadOrCreate(tmp.path());
  ASSERT_TRUE(ring.ok());
  std::ofstream(tmp.path() / "jwt-keys" / ((*ring)->active_kid() + ".pem")) << "garbage";
  auto reloaded = KeyRing::LoadOrCreate(tmp.path());
  ASSERT_FALSE(reloaded.ok());
  EXPECT_EQ(reloaded.error().code, ErrorCode::kInternal);
}

TEST(KeyRingLoadOrCreate, FailsWithInternalWhenActiveIsMissingOrUnknown) {
  TempDirForTest tmp;
  auto ring = KeyRing::LoadOrCreate(tmp.path());
  ASSERT_TRUE(ring.ok());
  const fs::path active = tmp.path() / "jwt-keys" / "active";
  std::ofstream(active) << "nope\n";
  auto unknown = KeyRing::LoadOrCreate(tmp.path());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInternal);
  fs::remove(active);
  auto missing = KeyRing::LoadOrCreate(tmp.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kInternal);
}

// --- CheckRegisteredClaims ---

constexpr int64_t kNow = 1'800'000'000;

json::object Claims(int64_t exp) {
  return json::object{{"iss", "agora"}, {"aud", "agora-api"}, {"exp", exp}, {"iat", kNow - 10}};
}

void ExpectRefusedStatus(const Status& s, std::string_view message) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(s.error().message, message);
}

TEST(CheckRegisteredClaims, AcceptsValidClaims) {
  EXPECT_TRUE(CheckRegisteredClaims(Claims(kNow + 60), kNow, "agora", "agora-api").ok());
}

TEST(CheckRegisteredClaims, RefusesExpiredToken) {
  ExpectRefusedStatus(CheckRegisteredClaims(Claims(kNow - 31), kNow, "agora", "agora-api"),
                      "token has expired");
  ExpectRefusedStatus(CheckRegisteredClaims(Claims(kNow), kNow, "agora", "agora-api", 0),
                      "token has expired");
}

TEST(CheckRegisteredClaims, AllowsExpiryWithinLeeway) {
  EXPECT_TRUE(CheckRegisteredClaims(Claims(kNow - 29), kNow, "agora", "agora-api").ok());
}

TEST(CheckRegisteredClaims, RequiresNumericExp) {
  json::object c = Claims(kNow + 60);
  c.erase("exp");
  ExpectRefusedStatus(CheckRegisteredClaims(c, kNow, "agora", "agora-api"), "token has no expiry");
  c["exp"] = std::to_string(kNow + 60);
  ExpectRefusedStatus(CheckRegisteredClaims(c, kNow, "agora", "agora-api"), "token has no expiry");
  c["exp"] = static_cast<double>(kNow + 60.5);
  EXPECT_TRUE(CheckRegisteredClaims(c, kNow, "agora", "agora-api").ok());
}

TEST(CheckRegisteredClaims, RefusesNotBeforeInTheFuture) {
  json::object c = Claims(kNow + 600);
  c["nbf"] = kNow + 31;
  ExpectRefusedStatus(CheckRegisteredClaims(c, kNow, "agora", "agora-api"),
                      "token is not yet valid");
  c["nbf"] = kNow + 30;
  EXPECT_TRUE(CheckRegisteredClaims(c, kNow, "agora", "agora-api").ok());
  c["nbf"] = "soon";
  ExpectRefusedStatus(CheckRegisteredClaims(c, kNow, "agora", "agora-api"),
                      "token is not yet valid");
}

TEST(CheckRegisteredClaims, RefusesIssuedAtInTheFuture) {
  json::object c = Claims(kNow + 600);
  c["iat"] = kNow + 120;
  ExpectRefusedStatus(CheckRegisteredClaims(c, kNow, "agora", "agora-api"),
                      "token was issued in the future");
}

TEST(CheckRegisteredClaims, RefusesWrongOrMissingIssuer) {
  ExpectRefusedStatus(CheckRegisteredClaims(Claims(kNow + 60), kNow, "other", "agora-api"),
                      "token issuer is not accepted");
  json::object c = Claims(kNow + 60);
  c.erase("iss");
  ExpectRefusedStatus(CheckRegisteredClaims(c, kNow, "agora", "agora-api"),
                      "token issuer is not accepted");
}

TEST(CheckRegisteredClaims, AcceptsAudienceStringOrArrayContainingIt) {
  json::object c = Claims(kNow + 60);
  c["aud"] = json::array{"billing", "agora-api"};
  EXPECT_TRUE(CheckRegisteredClaims(c, kNow, "agora", "agora-api").ok());
}

TEST(CheckRegisteredClaims, RefusesWrongOrMissingAudience) {
  ExpectRefusedStatus(CheckRegisteredClaims(Claims(kNow + 60), kNow, "agora", "billing"),
                      "token audience is not accepted");
  json::object c = Claims(kNow + 60);
  c["aud"] = json::array{"billing", 1};
  ExpectRefusedStatus(CheckRegisteredClaims(c, kNow, "agora", "agora-api"),
                      "token audience is not accepted");
  c.erase("aud");
  ExpectRefusedStatus(CheckRegisteredClaims(c, kNow, "agora", "agora-api"),
                      "token audience is not accepted");
}

}  // namespace
}  // namespace agora::crypto
