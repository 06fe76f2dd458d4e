// Prometheus metrics: counters, gauges and fixed-bucket histograms.
//
// Metrics are created once at start-up (NewCounter and friends return stable
// references) and updated lock-free from any thread. Render() writes the
// Prometheus text exposition format 0.0.4.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace agora::metrics {

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Latency histogram in seconds with fixed buckets from 100 µs to 10 s.
class Histogram {
 public:
  static constexpr std::array<double, 16> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
  void ObserveNanos(uint64_t nanos);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // Appends the _bucket/_sum/_count lines for this histogram.
  void Render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size()> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_nanos_{0};
};

class Registry {
 public:
  // `labels` is the rendered label set without braces: `route="/v1/me",method="GET"`.
  Counter& NewCounter(const std::string& name, const std::string& help, const std::string& labels = "");
  Histogram& NewHistogram(const std::string& name, const std::string& help, const std::string& labels = "");
  void NewGauge(const std::string& name, const std::string& help, std::function<double()> read,
                const std::string& labels = "");
  // A collector appends whole families (with # HELP/# TYPE) at render time.
  void AddCollector(std::function<void(std::string&)> collect);

  std::string Render() const;

 private:
  struct Family {
    std::string name, help, type;
    std::vector<std::pair<std::string, const void*>> series;
    std::vector<std::pair<std::string, std::function<double()>>> gauges;
  };
  Family& FamilyFor(const std::string& name, const std::string& help, const std::string& type);

  mutable std::mutex mu_;
  std::deque<Family> families_;
  std::deque<Counter> counters_;
  std::deque<Histogram> histograms_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

// Escapes a label value for the text format.
std::string EscapeLabel(std::string_view v);

}  // namespace agora::metrics
