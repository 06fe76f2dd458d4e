#include "core/crypto/key_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include "core/crypto/encoding.h"
#include "core/crypto/random.h"

namespace agora::crypto {

namespace fs = std::filesystem;

namespace {

Error IoError(std::string_view what, const fs::path& path, int err) {
  return Error::Internal(std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

// Closes the descriptor on scope exit unless released.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

void FsyncDir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) {
    ::fsync(fd.get());  // Best effort: some file systems refuse it on dirs.
  }
}

}  // namespace

Status EnsurePrivateDir(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    return Ok();
  }
  if (dir.has_parent_path() && !dir.parent_path().empty()) {
    fs::create_directories(dir.parent_path(), ec);
    if (ec) {
      return IoError("cannot create directory", dir.parent_path(), ec.value());
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return IoError("cannot create directory", dir, errno);
  }
  if (!fs::is_directory(dir, ec)) {
    return Error::Internal("not a directory: " + dir.string());
  }
  return Ok();
}

Status WriteFileAtomic(const fs::path& path, std::string_view contents) {
  const fs::path tmp = path.string() + ".tmp-" + HexEncode(RandomBytes(6));
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    return IoError("cannot create", tmp, errno);
  }
  // The umask cannot widen 0600, but make the mode explicit anyway.
  ::fchmod(fd.get(), 0600);
  auto fail = [&](std::string_view what, int err) -> Status {
    ::close(fd.Release());
    ::unlink(tmp.c_str());
    return IoError(what, tmp, err);
  };
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail("cannot write", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    return fail("cannot sync", errno);
  }
  if (::close(fd.Release()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return IoError("cannot close", tmp, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return IoError("cannot rename onto", path, err);
  }
  FsyncDir(path.has_parent_path() ? path.parent_path() : fs::path("."));
  return Ok();
}

Result<std::string> ReadWholeFile(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return Error::NotFound("no such file: " + path.string());
    }
    return IoError("cannot open", path, errno);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return IoError("cannot read", path, errno);
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string NewKeyId(TimePoint now) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  return "k" + std::to_string(seconds) + "-" + HexEncode(RandomBytes(4));
}

bool IsValidKeyId(std::string_view id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace agora::crypto
