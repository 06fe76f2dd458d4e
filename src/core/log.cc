#include "core/log.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include <boost/json/serialize.hpp>

#include "core/clock.h"

namespace agora::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};

// Lines are buffered and written by a background thread at most every
// kFlushEvery, or at once when the buffer passes kFlushBytes or a warning or
// error is logged: one write() per batch instead of one per line (access
// logs at tens of thousands of requests a second).
constexpr size_t kFlushBytes = 64 * 1024;
constexpr auto kFlushEvery = std::chrono::milliseconds(100);

class Sink {
 public:
  Sink() : thread_([this] { Loop(); }) {}
  ~Sink() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
    WriteOut();
  }

  void Append(const std::string& line, bool urgent) {
    bool flush_now;
    {
      std::lock_guard lock(mu_);
      buffer_ += line;
      flush_now = urgent || buffer_.size() >= kFlushBytes;
    }
    if (flush_now) WriteOut();
  }

  void WriteOut() {
    std::lock_guard out_lock(out_mu_);
    std::string batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(buffer_);
    }
    if (batch.empty()) return;
    std::fwrite(batch.data(), 1, batch.size(), stdout);
    std::fflush(stdout);
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (!done_) {
      cv_.wait_for(lock, kFlushEvery);
      lock.unlock();
      WriteOut();
      lock.lock();
    }
  }

  std::mutex out_mu_;  // keeps batches in order
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;  // GUARDED_BY(mu_)
  bool done_ = false;   // GUARDED_BY(mu_)
  std::thread thread_;
};

Sink& TheSink() {
  static Sink sink;
  return sink;
}

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

}  // namespace

bool SetLevel(std::string_view level) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (level == LevelName(l)) {
      g_min_level = static_cast<int>(l);
      return true;
    }
  }
  return false;
}

bool Enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed); }

void Write(Level level, std::string_view msg, boost::json::object fields) {
  if (!Enabled(level)) return;
  boost::json::object line;
  line.reserve(fields.size() + 3);
  line["ts"] = FormatRfc3339(SystemClock::Instance().Now());
  line["level"] = LevelName(level);
  line["msg"] = msg;
  for (auto& kv : fields) line[kv.key()] = std::move(kv.value());
  std::string text = boost::json::serialize(line);
  text.push_back('\n');
  TheSink().Append(text, level >= Level::kWarn);
}

void Flush() { TheSink().WriteOut(); }

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  // Fast path: ids, routes and most paths need no escaping.
  bool plain = true;
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out.append(s);
    out.push_back('"');
    return;
  }
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(ch);  // UTF-8 passes through; invalid bytes were refused by the parser
        }
    }
  }
  out.push_back('"');
}

void AppendNow(std::string& out) {
  thread_local int64_t cached_second = -1;
  thread_local std::string cached_prefix;  // "2026-11-28T14:26:18."
  const auto now = SystemClock::Instance().Now();
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  if (ms / 1000 != cached_second) {
    cached_second = ms / 1000;
    std::string full = FormatRfc3339(now);
    cached_prefix = full.substr(0, full.size() - 4);  // drop "123Z"
  }
  out.push_back('"');
  out += cached_prefix;
  const int frac = static_cast<int>(ms % 1000);
  out.push_back(static_cast<char>('0' + frac / 100));
  out.push_back(static_cast<char>('0' + frac / 10 % 10));
  out.push_back(static_cast<char>('0' + frac % 10));
  out += "Z\"";
}

void WriteLine(Level level, std::string json_object) {
  if (!Enabled(level)) return;
  json_object.push_back('\n');
  TheSink().Append(json_object, level >= Level::kWarn);
}

}  // namespace agora::log
