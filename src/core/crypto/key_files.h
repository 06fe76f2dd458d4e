// Small file helpers for key material on disk, shared by Aead and KeyRing.
//
// Key files are private to the process owner: directories are created 0700
// and files are written 0600, atomically (temp file in the same directory,
// fsync, rename), so a crash leaves the old or the new content, never a torn
// file. One process is expected to own a key directory; these helpers do not
// lock across processes.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/result.h"

namespace agora::crypto {

// Creates `dir` (and parents) if it does not exist; a new directory gets mode
// 0700. kInternal if it cannot be created or is not a directory.
[[nodiscard]] Status EnsurePrivateDir(const std::filesystem::path& dir);

// Replaces `path` with `contents`, mode 0600, atomically. kInternal on I/O
// failure (the old file, if any, is left as it was).
[[nodiscard]] Status WriteFileAtomic(const std::filesystem::path& path, std::string_view contents);

// Returns the whole content of `path`, or kNotFound if it does not exist, or
// kInternal if it cannot be read.
[[nodiscard]] Result<std::string> ReadWholeFile(const std::filesystem::path& path);

// Returns a fresh key id: "k" + Unix seconds of `now` + "-" + 8 random hex
// characters ("k1800000000-3fa2c91b"). Ids from this are valid for
// IsValidKeyId.
std::string NewKeyId(TimePoint now);

// Returns whether `id` is a usable key id: 1 to 64 characters from
// [A-Za-z0-9_-], so it is safe as a file name and inside "v1.<id>." and JWT
// headers.
bool IsValidKeyId(std::string_view id);

}  // namespace agora::crypto
