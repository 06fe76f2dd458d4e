// Authenticated encryption (AES-256-GCM) for personal data at rest, with key
// ids so keys can be rotated without re-encrypting old rows.
//
// A sealed value is text: "v1." + key_id + "." + base64url(nonce || ciphertext
// || tag), with a fresh random 12-byte nonce per call and a 16-byte tag. The
// associated data (e.g. "users.email:" + user id) is authenticated but not
// stored: decrypt with the same bytes, so a sealed value copied to another
// row or column fails to open.
//
// An Aead is immutable after construction and safe to share between threads.
// Keys live in a JSON file in a private directory (LoadOrCreate); rotation
// adds a new active key there (RotateInDir) and old keys stay for Decrypt.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/result.h"

namespace agora::crypto {

class Aead {
 public:
  struct Key {
    std::string id;     // IsValidKeyId: [A-Za-z0-9_-]{1,64}
    std::string bytes;  // 32 raw bytes
  };

  // Uses `keys[0]` to encrypt and all of them to decrypt. Aborts (a bug, not
  // an expected failure) if `keys` is empty, an id is invalid or repeated, or
  // a key is not 32 bytes.
  explicit Aead(std::vector<Key> keys);

  // Returns `plaintext` sealed under the active key, bound to
  // `associated_data`.
  std::string Encrypt(std::string_view plaintext, std::string_view associated_data) const;

  // Returns the plaintext of `sealed`, or kInvalidArgument if it is malformed,
  // names a key this Aead does not hold, or fails authentication (tampered,
  // or other associated data).
  [[nodiscard]] Result<std::string> Decrypt(std::string_view sealed,
                                            std::string_view associated_data) const;

  // The id of the key Encrypt uses.
  const std::string& active_key_id() const { return keys_.front().id; }

  // Loads the keys from `dir/aead-keys.json`; on first use creates `dir`
  // (0700) and the file (0600) with one new key. kInternal if the directory
  // or file cannot be created or read, or the file is not a valid key file.
  [[nodiscard]] static Result<Aead> LoadOrCreate(const std::filesystem::path& dir,
                                                 const Clock& clock = SystemClock::Instance());

  // Adds a new active key to `dir/aead-keys.json` (creating it if missing),
  // keeping the old ones for decryption; the file is replaced atomically.
  // Running Aead objects are unchanged: call LoadOrCreate again to use the
  // new key. kInternal on I/O failure or a corrupt file.
  [[nodiscard]] static Status RotateInDir(const std::filesystem::path& dir,
                                          const Clock& clock = SystemClock::Instance());

 private:
  const Key* FindKey(std::string_view id) const;

  std::vector<Key> keys_;
};

}  // namespace agora::crypto
