#include "core/crypto/aead.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>

#include <boost/json.hpp>

#include "core/crypto/encoding.h"
#include "core/crypto/key_files.h"
#include "core/crypto/random.h"

namespace agora::crypto {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr std::string_view kPrefix = "v1.";
constexpr const char* kKeyFileName = "aead-keys.json";
// EVP takes int lengths; feed longer inputs in pieces.
constexpr size_t kChunk = size_t{1} << 30;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "agora: AEAD %s\n", what);
  std::abort();
}

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherCtx NewCtx() {
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  if (!ctx) {
    Die("cannot allocate a cipher context");
  }
  return ctx;
}

const unsigned char* U(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* U(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

// Feeds associated data (out == nullptr) in chunks.
bool UpdateAad(EVP_CIPHER_CTX* ctx, std::string_view aad, bool encrypt) {
  while (!aad.empty()) {
    const size_t n = std::min(aad.size(), kChunk);
    int out_len = 0;
    const int ok = encrypt ? EVP_EncryptUpdate(ctx, nullptr, &out_len, U(aad), static_cast<int>(n))
                           : EVP_DecryptUpdate(ctx, nullptr, &out_len, U(aad), static_cast<int>(n));
    if (ok != 1) {
      return false;
    }
    aad.remove_prefix(n);
  }
  return true;
}

// Transforms `in` into `out` (same size; GCM is a stream mode) in chunks.
bool UpdateData(EVP_CIPHER_CTX* ctx, std::string_view in, unsigned char* out, bool encrypt) {
  while (!in.empty()) {
    const size_t n = std::min(in.size(), kChunk);
    int out_len = 0;
    const int ok = encrypt ? EVP_EncryptUpdate(ctx, out, &out_len, U(in), static_cast<int>(n))
                           : EVP_DecryptUpdate(ctx, out, &out_len, U(in), static_cast<int>(n));
    if (ok != 1 || static_cast<size_t>(out_len) != n) {
      return false;
    }
    in.remove_prefix(n);
    out += n;
  }
  return true;
}

Error Malformed() { return Error::InvalidArgument("sealed value is malformed"); }

// --- key file -----------------------------------------------------------
// {"version":1,"keys":[{"id":"k...","key":"<base64url>","created_at":<unix s>}, ...]}
// The first key is the active one.

struct StoredKey {
  Aead::Key key;
  int64_t created_at = 0;
};

Error Corrupt(const fs::path& file, std::string_view why) {
  return Error::Internal("AEAD key file " + file.string() + " is invalid: " + std::string(why));
}

Result<std::vector<StoredKey>> ParseKeyFile(const fs::path& file, std::string_view text) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) {
    return Corrupt(file, "not a JSON object");
  }
  const json::object& root = doc.get_object();
  const json::value* version = root.if_contains("version");
  if (version == nullptr || !version->is_int64() || version->get_int64() != 1) {
    return Corrupt(file, "unsupported version");
  }
  const json::value* keys = root.if_contains("keys");
  if (keys == nullptr || !keys->is_array() || keys->get_array().empty()) {
    return Corrupt(file, "no keys");
  }
  std::vector<StoredKey> out;
  std::set<std::string> seen;
  for (const json::value& v : keys->get_array()) {
    const json::object* o = v.if_object();
    if (o == nullptr) {
      return Corrupt(file, "key entry is not an object");
    }
    const json::value* id = o->if_contains("id");
    const json::value* key = o->if_contains("key");
    if (id == nullptr || !id->is_string() || !IsValidKeyId(id->get_string())) {
      return Corrupt(file, "bad key id");
    }
    if (key == nullptr || !key->is_string()) {
      return Corrupt(file, "missing key bytes");
    }
    std::optional<std::string> bytes = Base64UrlDecode(key->get_string());
    if (!bytes || bytes->size() != kKeySize) {
      return Corrupt(file, "key is not 32 base64url bytes");
    }
    StoredKey sk{{std::string(id->get_string()), std::move(*bytes)}, 0};
    if (!seen.insert(sk.key.id).second) {
      return Corrupt(file, "repeated key id");
    }
    if (const json::value* created = o->if_contains("created_at"); created && created->is_int64()) {
      sk.created_at = created->get_int64();
    }
    out.push_back(std::move(sk));
  }
  return out;
}

std::string SerializeKeyFile(const std::vector<StoredKey>& keys) {
  json::array arr;
  for (const StoredKey& k : keys) {
    arr.push_back(json::object{{"id", k.key.id},
                               {"key", Base64UrlEncode(k.key.bytes)},
                               {"created_at", k.created_at}});
  }
  return json::serialize(json::object{{"version", 1}, {"keys", std::move(arr)}}) + "\n";
}

StoredKey NewStoredKey(const std::vector<StoredKey>& existing, const Clock& clock) {
  for (;;) {
    std::string id = NewKeyId(clock.Now());
    const bool taken = std::any_of(existing.begin(), existing.end(),
                                   [&](const StoredKey& k) { return k.key.id == id; });
    if (!taken) {
      return {{std::move(id), RandomBytes(kKeySize)}, clock.NowSeconds()};
    }
  }
}

// Reads the key file; kNotFound if it does not exist.
Result<std::vector<StoredKey>> ReadKeyFile(const fs::path& file) {
  AGORA_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(file));
  return ParseKeyFile(file, text);
}

Aead FromStored(std::vector<StoredKey> stored) {
  std::vector<Aead::Key> keys;
  keys.reserve(stored.size());
  for (StoredKey& s : stored) {
    keys.push_back(std::move(s.key));
  }
  return Aead(std::move(keys));
}

}  // namespace

Aead::Aead(std::vector<Key> keys) : keys_(std::move(keys)) {
  if (keys_.empty()) {
    Die("needs at least one key");
  }
  std::set<std::string_view> ids;
  for (const Key& k : keys_) {
    if (!IsValidKeyId(k.id) || !ids.insert(k.id).second) {
      Die("key id is invalid or repeated");
    }
    if (k.bytes.size() != kKeySize) {
      Die("key is not 32 bytes");
    }
  }
}

const Aead::Key* Aead::FindKey(std::string_view id) const {
  for (const Key& k : keys_) {
    if (k.id == id) {
      return &k;
    }
  }
  return nullptr;
}

std::string Aead::Encrypt(std::string_view plaintext, std::string_view associated_data) const {
  const Key& key = keys_.front();
  std::string blob = RandomBytes(kNonceSize);
  blob.resize(kNonceSize + plaintext.size() + kTagSize);

  CipherCtx ctx = NewCtx();
  int out_len = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, U(key.bytes), U(blob)) != 1 ||
      !UpdateAad(ctx.get(), associated_data, true) ||
      !UpdateData(ctx.get(), plaintext, U(blob) + kNonceSize, true) ||
      EVP_EncryptFinal_ex(ctx.get(), U(blob) + kNonceSize + plaintext.size(), &out_len) != 1 ||
      out_len != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize,
                          U(blob) + kNonceSize + plaintext.size()) != 1) {
    Die("encryption failed");
  }
  std::string out;
  out.reserve(kPrefix.size() + key.id.size() + 1 + blob.size() / 3 * 4 + 4);
  out.append(kPrefix).append(key.id).append(".").append(Base64UrlEncode(blob));
  return out;
}

Result<std::string> Aead::Decrypt(std::string_view sealed, std::string_view associated_data) const {
  if (sealed.substr(0, kPrefix.size()) != kPrefix) {
    return Malformed();
  }
  sealed.remove_prefix(kPrefix.size());
  const size_t dot = sealed.find('.');
  if (dot == std::string_view::npos) {
    return Malformed();
  }
  const std::string_view key_id = sealed.substr(0, dot);
  const Key* key = FindKey(key_id);
  if (key == nullptr) {
    return Error::InvalidArgument("sealed value uses an unknown key");
  }
  std::optional<std::string> blob = Base64UrlDecode(sealed.substr(dot + 1));
  if (!blob || blob->size() < kNonceSize + kTagSize) {
    return Malformed();
  }
  const std::string_view all(*blob);
  const std::string_view nonce = all.substr(0, kNonceSize);
  const std::string_view ciphertext = all.substr(kNonceSize, all.size() - kNonceSize - kTagSize);
  std::string tag(all.substr(all.size() - kTagSize));
  std::string plaintext(ciphertext.size(), '\0');

  CipherCtx ctx = NewCtx();
  int out_len = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, U(key->bytes), U(nonce)) != 1) {
    Die("cannot initialise decryption");
  }
  if (!UpdateAad(ctx.get(), associated_data, false) ||
      !UpdateData(ctx.get(), ciphertext, U(plaintext), false) ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, U(tag)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), U(plaintext) + plaintext.size(), &out_len) != 1) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return Error::InvalidArgument("sealed value failed authentication");
  }
  return plaintext;
}

Result<Aead> Aead::LoadOrCreate(const fs::path& dir, const Clock& clock) {
  AGORA_RETURN_IF_ERROR(EnsurePrivateDir(dir));
  const fs::path file = dir / kKeyFileName;
  Result<std::vector<StoredKey>> stored = ReadKeyFile(file);
  if (stored.ok()) {
    return FromStored(std::move(stored).value());
  }
  if (stored.error().code != ErrorCode::kNotFound) {
    return std::move(stored).error();
  }
  std::vector<StoredKey> keys{NewStoredKey({}, clock)};
  AGORA_RETURN_IF_ERROR(WriteFileAtomic(file, SerializeKeyFile(keys)));
  return FromStored(std::move(keys));
}

Status Aead::RotateInDir(const fs::path& dir, const Clock& clock) {
  AGORA_RETURN_IF_ERROR(EnsurePrivateDir(dir));
  const fs::path file = dir / kKeyFileName;
  std::vector<StoredKey> keys;
  Result<std::vector<StoredKey>> stored = ReadKeyFile(file);
  if (stored.ok()) {
    keys = std::move(stored).value();
  } else if (stored.error().code != ErrorCode::kNotFound) {
    return std::move(stored).error();
  }
  keys.insert(keys.begin(), NewStoredKey(keys, clock));
  return WriteFileAtomic(file, SerializeKeyFile(keys));
}

}  // namespace agora::crypto
