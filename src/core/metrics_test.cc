#include "core/metrics.h"

#include <gtest/gtest.h>

namespace agora::metrics {
namespace {

TEST(Registry, RendersCountersWithHelpAndType) {
  Registry reg;
  auto& c = reg.NewCounter("agora_things_total", "Things.", R"(kind="a")");
  c.Inc();
  c.Inc(2);
  std::string text = reg.Render();
  EXPECT_NE(text.find("# TYPE agora_things_total counter"), std::string::npos);
  EXPECT_NE(text.find("agora_things_total{kind=\"a\"} 3"), std::string::npos);
}

TEST(Histogram, BucketsAreCumulative) {
  Registry reg;
  auto& h = reg.NewHistogram("agora_latency_seconds", "Latency.");
  h.ObserveNanos(50'000);         // 50 µs
  h.ObserveNanos(2'000'000);      // 2 ms
  h.ObserveNanos(20'000'000'000); // 20 s, beyond the last bound
  std::string text = reg.Render();
  EXPECT_NE(text.find("agora_latency_seconds_bucket{le=\"0.0001\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("agora_latency_seconds_bucket{le=\"0.0025\"} 2"), std::string::npos);
  EXPECT_NE(text.find("agora_latency_seconds_bucket{le=\"10\"} 2"), std::string::npos);
  EXPECT_NE(text.find("agora_latency_seconds_bucket{le=\"+Inf\"} 3"), std::string::npos);
  EXPECT_NE(text.find("agora_latency_seconds_count 3"), std::string::npos);
}

TEST(Registry, GaugesReadAtRenderTime) {
  Registry reg;
  double v = 1;
  reg.NewGauge("agora_queue_depth", "Depth.", [&] { return v; });
  v = 7;
  EXPECT_NE(reg.Render().find("agora_queue_depth 7"), std::string::npos);
}

TEST(EscapeLabel, EscapesQuotesAndBackslashes) { EXPECT_EQ(EscapeLabel("a\"b\\c\n"), "a\\\"b\\\\c\\n"); }

}  // namespace
}  // namespace agora::metrics
