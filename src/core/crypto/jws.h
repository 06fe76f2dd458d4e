// Signed tokens: compact JWS / JWT (RFC 7515, 7519) with Ed25519 ("EdDSA",
// RFC 8037), and the set of signing keys behind them.
//
// SigningKey is one Ed25519 key pair with its key id ("kid"). KeyRing holds
// one active key that signs new tokens plus older keys that still verify
// tokens issued before a rotation, until they are retired. Verification only
// ever accepts alg "EdDSA" with a kid the ring holds: "none", HS256 and
// other algorithm-confusion tricks are refused before any signature check.
//
// VerifyJwt checks only the signature and shape; apply CheckRegisteredClaims
// (exp, nbf, iat, iss, aud) to the returned claims before trusting them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "core/clock.h"
#include "core/result.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace agora::crypto {

// An Ed25519 private key with its key id. Copies share the key (immutable);
// all methods are const and thread-safe.
class SigningKey {
 public:
  // Returns a new random key. Aborts if `kid` is not IsValidKeyId (a bug).
  static SigningKey Generate(std::string kid);
  // Parses a PKCS#8 PEM Ed25519 private key, or kInvalidArgument if `kid` is
  // not a valid key id or `pem` is not an Ed25519 private key.
  [[nodiscard]] static Result<SigningKey> FromPem(std::string kid, std::string_view pem);

  // The private key as PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). Secret.
  std::string PrivatePem() const;
  const std::string& kid() const { return kid_; }
  // Returns the raw 64-byte Ed25519 signature of `data`.
  std::string Sign(std::string_view data) const;
  // {"kty":"OKP","crv":"Ed25519","x":<base64url public key>,"kid":...,
  //  "alg":"EdDSA","use":"sig"}
  boost::json::object PublicJwk() const;
  // Returns whether `sig` is a valid signature of `data` by this key.
  bool Verify(std::string_view data, std::string_view sig) const;

 private:
  SigningKey(std::string kid, std::shared_ptr<evp_pkey_st> pkey);

  std::string kid_;
  std::shared_ptr<evp_pkey_st> pkey_;
};

// A set of signing keys: one active for signing, older ones kept for
// verification until retired.
//
// Thread-safe: SignJwt, VerifyJwt, Jwks and active_kid may run concurrently
// with each other and with Rotate and RetireOlderThan (which are serialised
// among themselves). On disk a ring lives in `dir/jwt-keys/`: one
// `<kid>.pem` per key (0600), `active` holding the signer's kid, and
// `rotation.json` recording when each older key stopped being active. One
// process is expected to own the directory.
class KeyRing {
 public:
  // Loads every key from `dir/jwt-keys/*.pem` and the signer's kid from
  // `dir/jwt-keys/active`; when there are no keys yet, creates the
  // directories (0700) and a first key (files 0600, written atomically).
  // Rotation times come from `clock`, which must outlive the ring; an older
  // key with no recorded rotation time counts as rotated out at load.
  // kInternal if files cannot be read or written, a key file is not an
  // Ed25519 PEM, or `active` is missing or names no loaded key.
  [[nodiscard]] static Result<std::shared_ptr<KeyRing>> LoadOrCreate(
      const std::filesystem::path& dir, const Clock& clock = SystemClock::Instance());
  // One generated key, nothing on disk.
  static std::shared_ptr<KeyRing> InMemoryForTest(const Clock& clock = SystemClock::Instance());

  KeyRing(const KeyRing&) = delete;
  KeyRing& operator=(const KeyRing&) = delete;

  // Generates a new active key; the previous one stays for verification,
  // marked as rotated out now. Persists first when loaded from disk: on
  // kInternal (I/O failure) the ring is unchanged.
  [[nodiscard]] Status Rotate();

  // Drops verification keys, other than the active one, whose retirement
  // time (rotation time + `keep_for`) is at or before `now`; tokens they
  // signed stop verifying. Deletes their files when loaded from disk (best
  // effort: a file that cannot be deleted is dropped again after a reload).
  void RetireOlderThan(TimePoint now, std::chrono::seconds keep_for);

  // Returns a compact JWT of `claims` signed by the active key, with header
  // {"alg":"EdDSA","typ":"JWT","kid":<active kid>}.
  std::string SignJwt(const boost::json::object& claims) const;

  // Verifies the signature of a compact JWS and returns its claims, or
  // kUnauthenticated, with a message saying why, when: the token is not three
  // base64url parts; the header is not a JSON object; alg is not "EdDSA"
  // (covers "none" and HS256) or the header has "crit"; kid is missing or
  // not in the ring; the signature is invalid; the payload is not a JSON
  // object. Does not look at any claim.
  [[nodiscard]] Result<boost::json::object> VerifyJwt(std::string_view token) const;

  // {"keys":[<PublicJwk of each key, active first>]}, for /.well-known/jwks.json.
  boost::json::object Jwks() const;

  std::string active_kid() const;

 private:
  struct Entry {
    SigningKey key;
    std::optional<TimePoint> rotated_out_at;  // nullopt for the active key
  };

  KeyRing(const Clock& clock, std::optional<std::filesystem::path> key_dir);
  static Result<std::shared_ptr<KeyRing>> Load(const std::filesystem::path& key_dir,
                                               const Clock& clock);
  // Writes rotation.json from `keys`; requires rotate_mu_.
  Status WriteRotationFile(const std::map<std::string, Entry, std::less<>>& keys) const;

  const Clock& clock_;
  const std::optional<std::filesystem::path> key_dir_;  // nullopt in memory

  std::mutex rotate_mu_;  // Serialises Rotate and RetireOlderThan, and their file I/O.
  mutable std::shared_mutex mu_;
  std::string active_kid_;                           // GUARDED_BY(mu_)
  std::map<std::string, Entry, std::less<>> keys_;  // GUARDED_BY(mu_)
};

// Checks the registered claims of verified `claims` at `now_seconds` (Unix
// time), allowing `leeway_seconds` of clock skew. Returns Ok, or
// kUnauthenticated when:
//   "token has no expiry"            exp is missing or not a number;
//   "token has expired"              exp <= now - leeway;
//   "token is not yet valid"         nbf > now + leeway;
//   "token was issued in the future" iat > now + leeway;
//   "token issuer is not accepted"   iss is not a string equal to `issuer`;
//   "token audience is not accepted" aud is neither `audience` nor an array
//                                    containing it.
// nbf and iat are optional but must be numbers when present.
[[nodiscard]] Status CheckRegisteredClaims(const boost::json::object& claims, int64_t now_seconds,
                                           std::string_view issuer, std::string_view audience,
                                           int64_t leeway_seconds = 30);

}  // namespace agora::crypto
