#include "core/metrics.h"

#include <fmt/format.h>

namespace agora::metrics {

void Histogram::ObserveNanos(uint64_t nanos) {
  const double secs = static_cast<double>(nanos) / 1e9;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    if (secs <= kBounds[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(nanos, std::memory_order_relaxed);
}

void Histogram::Render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, kBounds[i], cumulative);
  }
  const uint64_t total = count_.load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, total);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n", name, braces, static_cast<double>(sum_nanos_.load()) / 1e9);
  out += fmt::format("{}_count{} {}\n", name, braces, total);
}

Registry::Family& Registry::FamilyFor(const std::string& name, const std::string& help, const std::string& type) {
  for (auto& f : families_) {
    if (f.name == name) return f;
  }
  families_.push_back(Family{name, help, type, {}, {}});
  return families_.back();
}

Counter& Registry::NewCounter(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mu_);
  counters_.emplace_back();
  FamilyFor(name, help, "counter").series.emplace_back(labels, &counters_.back());
  return counters_.back();
}

Histogram& Registry::NewHistogram(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mu_);
  histograms_.emplace_back();
  FamilyFor(name, help, "histogram").series.emplace_back(labels, &histograms_.back());
  return histograms_.back();
}

void Registry::NewGauge(const std::string& name, const std::string& help, std::function<double()> read,
                        const std::string& labels) {
  std::lock_guard lock(mu_);
  FamilyFor(name, help, "gauge").gauges.emplace_back(labels, std::move(read));
}

void Registry::AddCollector(std::function<void(std::string&)> collect) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& f : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
    for (const auto& [labels, ptr] : f.series) {
      if (f.type == "counter") {
        const auto* c = static_cast<const Counter*>(ptr);
        out += labels.empty() ? fmt::format("{} {}\n", f.name, c->value())
                              : fmt::format("{}{{{}}} {}\n", f.name, labels, c->value());
      } else {
        static_cast<const Histogram*>(ptr)->Render(out, f.name, labels);
      }
    }
    for (const auto& [labels, read] : f.gauges) {
      out += labels.empty() ? fmt::format("{} {}\n", f.name, read())
                            : fmt::format("{}{{{}}} {}\n", f.name, labels, read());
    }
  }
  for (const auto& c : collectors_) c(out);
  return out;
}

std::string EscapeLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace agora::metrics
