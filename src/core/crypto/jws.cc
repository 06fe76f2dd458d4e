#include "core/crypto/jws.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "core/crypto/encoding.h"
#include "core/crypto/key_files.h"

namespace agora::crypto {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr size_t kEd25519SignatureSize = 64;
constexpr size_t kEd25519PublicKeySize = 32;
constexpr std::string_view kAlg = "EdDSA";
constexpr const char* kKeysSubdir = "jwt-keys";
constexpr const char* kActiveFile = "active";
constexpr const char* kRotationFile = "rotation.json";
constexpr std::string_view kPemSuffix = ".pem";

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "agora: Ed25519 %s\n", what);
  std::abort();
}

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* pkey) { return {pkey, &EVP_PKEY_free}; }

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

MdCtx NewMdCtx() {
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx) {
    Die("cannot allocate a digest context");
  }
  return ctx;
}

const unsigned char* U(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

Error Refused(std::string msg) { return Error::Unauthenticated(std::move(msg)); }

// Parses base64url JSON that must be an object.
std::optional<json::object> DecodeJsonObject(std::string_view part) {
  std::optional<std::string> text = Base64UrlDecode(part);
  if (!text) {
    return std::nullopt;
  }
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  return std::move(v.get_object());
}

int64_t ToUnixSeconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

// --- SigningKey -------------------------------------------------------------

SigningKey::SigningKey(std::string kid, std::shared_ptr<evp_pkey_st> pkey)
    : kid_(std::move(kid)), pkey_(std::move(pkey)) {}

SigningKey SigningKey::Generate(std::string kid) {
  if (!IsValidKeyId(kid)) {
    Die("key id is invalid");
  }
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (pkey == nullptr) {
    Die("key generation failed");
  }
  return SigningKey(std::move(kid), Own(pkey));
}

Result<SigningKey> SigningKey::FromPem(std::string kid, std::string_view pem) {
  if (!IsValidKeyId(kid)) {
    return Error::InvalidArgument("key id is invalid");
  }
  if (pem.size() > 64 * 1024) {
    return Error::InvalidArgument("key PEM is too large");
  }
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) {
    Die("cannot allocate a BIO");
  }
  // An empty passphrase callback: encrypted PEMs fail instead of prompting.
  static pem_password_cb* const kNoPassword = [](char*, int, int, void*) { return 0; };
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, kNoPassword, nullptr);
  if (pkey == nullptr) {
    return Error::InvalidArgument("key PEM is not a private key");
  }
  std::shared_ptr<EVP_PKEY> owned = Own(pkey);
  if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
    return Error::InvalidArgument("key PEM is not an Ed25519 key");
  }
  return SigningKey(std::move(kid), std::move(owned));
}

std::string SigningKey::PrivatePem() const {
  Bio bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    Die("cannot write the private key");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, static_cast<size_t>(len));
  OPENSSL_cleanse(data, static_cast<size_t>(len));
  return pem;
}

std::string SigningKey::Sign(std::string_view data) const {
  MdCtx ctx = NewMdCtx();
  std::string sig(kEd25519SignatureSize, '\0');
  size_t sig_len = sig.size();
  // Ed25519 is "pure": no separate digest, the whole message in one call.
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len, U(data),
                     data.size()) != 1 ||
      sig_len != kEd25519SignatureSize) {
    Die("signing failed");
  }
  return sig;
}

bool SigningKey::Verify(std::string_view data, std::string_view sig) const {
  if (sig.size() != kEd25519SignatureSize) {
    return false;
  }
  MdCtx ctx = NewMdCtx();
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1) {
    Die("cannot initialise verification");
  }
  return EVP_DigestVerify(ctx.get(), U(sig), sig.size(), U(data), data.size()) == 1;
}

json::object SigningKey::PublicJwk() const {
  std::string pub(kEd25519PublicKeySize, '\0');
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(pkey_.get(), reinterpret_cast<unsigned char*>(pub.data()),
                                  &len) != 1 ||
      len != kEd25519PublicKeySize) {
    Die("cannot read the public key");
  }
  return json::object{{"kty", "OKP"},   {"crv", "Ed25519"}, {"x", Base64UrlEncode(pub)},
                      {"kid", kid_},    {"alg", kAlg},      {"use", "sig"}};
}

// --- KeyRing ----------------------------------------------------------------

KeyRing::KeyRing(const Clock& clock, std::optional<fs::path> key_dir)
    : clock_(clock), key_dir_(std::move(key_dir)) {}

std::shared_ptr<KeyRing> KeyRing::InMemoryForTest(const Clock& clock) {
  std::shared_ptr<KeyRing> ring(new KeyRing(clock, std::nullopt));
  SigningKey key = SigningKey::Generate(NewKeyId(clock.Now()));
  ring->active_kid_ = key.kid();
  ring->keys_.emplace(ring->active_kid_, Entry{std::move(key), std::nullopt});
  return ring;
}

Result<std::shared_ptr<KeyRing>> KeyRing::LoadOrCreate(const fs::path& dir, const Clock& clock) {
  AGORA_RETURN_IF_ERROR(EnsurePrivateDir(dir));
  const fs::path key_dir = dir / kKeysSubdir;
  AGORA_RETURN_IF_ERROR(EnsurePrivateDir(key_dir));
  return Load(key_dir, clock);
}

Result<std::shared_ptr<KeyRing>> KeyRing::Load(const fs::path& key_dir, const Clock& clock) {
  std::shared_ptr<KeyRing> ring(new KeyRing(clock, key_dir));

  // Every <kid>.pem; temp files from an interrupted write do not end in .pem.
  std::error_code ec;
  std::vector<fs::path> pems;
  for (fs::directory_iterator it(key_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > kPemSuffix.size() && name.ends_with(kPemSuffix) && it->is_regular_file()) {
      pems.push_back(it->path());
    }
  }
  if (ec) {
    return Error::Internal("cannot list " + key_dir.string() + ": " + ec.message());
  }
  for (const fs::path& pem_path : pems) {
    std::string kid = pem_path.stem().string();
    AGORA_ASSIGN_OR_RETURN(std::string pem, ReadWholeFile(pem_path));
    Result<SigningKey> key = SigningKey::FromPem(kid, pem);
    OPENSSL_cleanse(pem.data(), pem.size());
    if (!key.ok()) {
      return Error::Internal("JWT key file " + pem_path.string() + " is invalid: " +
                             key.error().message);
    }
    ring->keys_.emplace(std::move(kid), Entry{std::move(key).value(), std::nullopt});
  }

  const fs::path active_path = key_dir / kActiveFile;
  Result<std::string> active = ReadWholeFile(active_path);
  if (!active.ok()) {
    if (active.error().code != ErrorCode::kNotFound) {
      return std::move(active).error();
    }
    if (!ring->keys_.empty()) {
      return Error::Internal("JWT key directory " + key_dir.string() +
                             " has keys but no 'active' file");
    }
    // First start: one key, pem before `active` so `active` never names a
    // missing key.
    SigningKey key = SigningKey::Generate(NewKeyId(clock.Now()));
    AGORA_RETURN_IF_ERROR(
        WriteFileAtomic(key_dir / (key.kid() + std::string(kPemSuffix)), key.PrivatePem()));
    AGORA_RETURN_IF_ERROR(WriteFileAtomic(active_path, key.kid() + "\n"));
    ring->active_kid_ = key.kid();
    ring->keys_.emplace(ring->active_kid_, Entry{std::move(key), std::nullopt});
    return ring;
  }
  std::string active_kid = std::move(active).value();
  while (!active_kid.empty() && std::isspace(static_cast<unsigned char>(active_kid.back()))) {
    active_kid.pop_back();
  }
  if (!ring->keys_.contains(active_kid)) {
    return Error::Internal("JWT key directory " + key_dir.string() +
                           ": 'active' names no key file");
  }
  ring->active_kid_ = active_kid;

  // Rotation times of the older keys; any without one count from now.
  std::map<std::string, int64_t, std::less<>> rotated;
  const fs::path rotation_path = key_dir / kRotationFile;
  Result<std::string> rotation_text = ReadWholeFile(rotation_path);
  if (rotation_text.ok()) {
    boost::system::error_code jec;
    json::value doc = json::parse(*rotation_text, jec);
    const json::object* root = jec ? nullptr : doc.if_object();
    const json::value* times = root ? root->if_contains("rotated_out_at") : nullptr;
    if (times == nullptr || !times->is_object()) {
      return Error::Internal("JWT rotation file " + rotation_path.string() + " is invalid");
    }
    for (const auto& [kid, t] : times->get_object()) {
      if (t.is_int64()) {
        rotated.emplace(std::string(kid), t.get_int64());
      }
    }
  } else if (rotation_text.error().code != ErrorCode::kNotFound) {
    return std::move(rotation_text).error();
  }
  const TimePoint now = clock.Now();
  for (auto& [kid, entry] : ring->keys_) {
    if (kid == ring->active_kid_) {
      continue;
    }
    auto it = rotated.find(kid);
    entry.rotated_out_at =
        it == rotated.end() ? now : TimePoint(std::chrono::seconds(it->second));
  }
  return ring;
}

Status KeyRing::WriteRotationFile(const std::map<std::string, Entry, std::less<>>& keys) const {
  json::object times;
  for (const auto& [kid, entry] : keys) {
    if (entry.rotated_out_at) {
      times[kid] = ToUnixSeconds(*entry.rotated_out_at);
    }
  }
  return WriteFileAtomic(*key_dir_ / kRotationFile,
                         json::serialize(json::object{{"rotated_out_at", std::move(times)}}) + "\n");
}

Status KeyRing::Rotate() {
  std::lock_guard<std::mutex> rotate_lock(rotate_mu_);
  // Only this thread changes the ring while rotate_mu_ is held, so a copy
  // taken now stays current.
  std::map<std::string, Entry, std::less<>> next;
  std::string old_active;
  {
    std::shared_lock lock(mu_);
    next = keys_;
    old_active = active_kid_;
  }
  const TimePoint now = clock_.Now();
  std::string kid = NewKeyId(now);
  while (next.contains(kid)) {
    kid = NewKeyId(now);
  }
  SigningKey key = SigningKey::Generate(kid);
  next.at(old_active).rotated_out_at = now;
  next.emplace(kid, Entry{key, std::nullopt});

  if (key_dir_) {
    // pem, then rotation times, then the switch of `active`: a crash part-way
    // leaves the old key active and the new one loadable as a spare.
    const fs::path pem_path = *key_dir_ / (kid + std::string(kPemSuffix));
    AGORA_RETURN_IF_ERROR(WriteFileAtomic(pem_path, key.PrivatePem()));
    Status written = WriteRotationFile(next);
    if (written.ok()) {
      written = WriteFileAtomic(*key_dir_ / kActiveFile, kid + "\n");
    }
    if (!written.ok()) {
      std::error_code ec;
      fs::remove(pem_path, ec);
      return written;
    }
  }

  std::unique_lock lock(mu_);
  keys_ = std::move(next);
  active_kid_ = std::move(kid);
  return Ok();
}

void KeyRing::RetireOlderThan(TimePoint now, std::chrono::seconds keep_for) {
  std::lock_guard<std::mutex> rotate_lock(rotate_mu_);
  std::vector<std::string> retired;
  {
    std::unique_lock lock(mu_);
    for (auto it = keys_.begin(); it != keys_.end();) {
      const Entry& e = it->second;
      if (it->first != active_kid_ && e.rotated_out_at && *e.rotated_out_at + keep_for <= now) {
        retired.push_back(it->first);
        it = keys_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (!key_dir_ || retired.empty()) {
    return;
  }
  for (const std::string& kid : retired) {
    std::error_code ec;
    fs::remove(*key_dir_ / (kid + std::string(kPemSuffix)), ec);
  }
  std::map<std::string, Entry, std::less<>> snapshot;
  {
    std::shared_lock lock(mu_);
    snapshot = keys_;
  }
  (void)WriteRotationFile(snapshot);  // Best effort; stale entries are ignored on load.
}

std::string KeyRing::SignJwt(const json::object& claims) const {
  std::optional<SigningKey> key;
  {
    std::shared_lock lock(mu_);
    key = keys_.at(active_kid_).key;
  }
  const json::object header{{"alg", kAlg}, {"typ", "JWT"}, {"kid", key->kid()}};
  std::string signing_input =
      Base64UrlEncode(json::serialize(header)) + "." + Base64UrlEncode(json::serialize(claims));
  const std::string sig = key->Sign(signing_input);
  return signing_input + "." + Base64UrlEncode(sig);
}

Result<json::object> KeyRing::VerifyJwt(std::string_view token) const {
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos ||
      dot1 == 0 || dot2 == dot1 + 1 || dot2 + 1 == token.size()) {
    return Refused("token is malformed");
  }
  const std::string_view header_part = token.substr(0, dot1);
  const std::string_view payload_part = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view sig_part = token.substr(dot2 + 1);

  std::optional<json::object> header = DecodeJsonObject(header_part);
  if (!header) {
    return Refused("token header is invalid");
  }
  const json::value* alg = header->if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != kAlg) {
    return Refused("token algorithm is not accepted");
  }
  if (header->contains("crit")) {
    return Refused("token header has unsupported critical parameters");
  }
  const json::value* kid = header->if_contains("kid");
  if (kid == nullptr || !kid->is_string()) {
    return Refused("token has no key id");
  }
  std::optional<SigningKey> key;
  {
    std::shared_lock lock(mu_);
    auto it = keys_.find(std::string_view(kid->get_string()));
    if (it != keys_.end()) {
      key = it->second.key;
    }
  }
  if (!key) {
    return Refused("token key id is unknown");
  }
  std::optional<std::string> sig = Base64UrlDecode(sig_part);
  if (!sig || !key->Verify(token.substr(0, dot2), *sig)) {
    return Refused("token signature is invalid");
  }
  std::optional<json::object> claims = DecodeJsonObject(payload_part);
  if (!claims) {
    return Refused("token payload is invalid");
  }
  return std::move(*claims);
}

json::object KeyRing::Jwks() const {
  json::array keys;
  std::shared_lock lock(mu_);
  keys.push_back(keys_.at(active_kid_).key.PublicJwk());
  for (const auto& [kid, entry] : keys_) {
    if (kid != active_kid_) {
      keys.push_back(entry.key.PublicJwk());
    }
  }
  return json::object{{"keys", std::move(keys)}};
}

std::string KeyRing::active_kid() const {
  std::shared_lock lock(mu_);
  return active_kid_;
}

// --- claims -----------------------------------------------------------------

namespace {

// A finite JSON number as a double, or nullopt.
std::optional<double> NumberClaim(const json::value& v) {
  if (v.is_int64()) {
    return static_cast<double>(v.get_int64());
  }
  if (v.is_uint64()) {
    return static_cast<double>(v.get_uint64());
  }
  if (v.is_double() && std::isfinite(v.get_double())) {
    return v.get_double();
  }
  return std::nullopt;
}

}  // namespace

Status CheckRegisteredClaims(const json::object& claims, int64_t now_seconds,
                             std::string_view issuer, std::string_view audience,
                             int64_t leeway_seconds) {
  const double now = static_cast<double>(now_seconds);
  const double leeway = static_cast<double>(leeway_seconds);

  const json::value* exp = claims.if_contains("exp");
  std::optional<double> exp_value = exp ? NumberClaim(*exp) : std::nullopt;
  if (!exp_value) {
    return Refused("token has no expiry");
  }
  if (*exp_value <= now - leeway) {
    return Refused("token has expired");
  }
  if (const json::value* nbf = claims.if_contains("nbf")) {
    std::optional<double> v = NumberClaim(*nbf);
    if (!v || *v > now + leeway) {
      return Refused("token is not yet valid");
    }
  }
  if (const json::value* iat = claims.if_contains("iat")) {
    std::optional<double> v = NumberClaim(*iat);
    if (!v || *v > now + leeway) {
      return Refused("token was issued in the future");
    }
  }
  const json::value* iss = claims.if_contains("iss");
  if (iss == nullptr || !iss->is_string() || iss->get_string() != issuer) {
    return Refused("token issuer is not accepted");
  }
  const json::value* aud = claims.if_contains("aud");
  bool audience_ok = false;
  if (aud != nullptr && aud->is_string()) {
    audience_ok = aud->get_string() == audience;
  } else if (aud != nullptr && aud->is_array()) {
    const json::array& list = aud->get_array();
    audience_ok = std::any_of(list.begin(), list.end(), [&](const json::value& v) {
      return v.is_string() && v.get_string() == audience;
    });
  }
  if (!audience_ok) {
    return Refused("token audience is not accepted");
  }
  return Ok();
}

}  // namespace agora::crypto
