// Metrics: what Thimble has done, in Prometheus' text exposition format (0.0.4), served at
// /metrics. Recording is lock-free (relaxed atomics), so the reactor thread can count every
// request, cache hits included, without contention. Values that other components already keep
// (cache sizes, queue depth, service counters) are read from them when /metrics is scraped.
//
// Thread-safety: every method may be called from any thread; add_reading() only before serving.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conf/base/status.h"

namespace thimble::proxy {

// What a request asked for, as a metrics label.
enum class Route : std::uint8_t { kThumbnail, kMeta, kPreset, kHealth, kMetrics, kOther };
inline constexpr std::size_t kRouteCount = 6;
std::string_view route_name(Route route);

// The timed parts of producing a thumbnail.
enum class Stage : std::uint8_t { kFetch, kSniff, kDecode, kSmart, kTransform, kEncode };
inline constexpr std::size_t kStageCount = 6;
std::string_view stage_name(Stage stage);

// A Prometheus histogram of durations in seconds over fixed bucket bounds.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  void observe(double seconds);
  // Appends the _bucket (cumulative), _sum and _count lines of `name{labels}`; `labels` is
  // either empty or `key="value"` pairs without braces.
  void write(std::string& out, std::string_view name, std::string_view labels) const;
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // one per bound, then +Inf
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // A request arrived / was answered. `cache` is the response's cache outcome ("hit", "stored",
  // "miss", "coalesced" or "-").
  void request_started() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void request_finished(Route route, int status, std::string_view cache, double seconds);
  // Time spent in one stage of producing a thumbnail (once per fetch or transform, not per
  // coalesced waiter).
  void observe_stage(Stage stage, double seconds);
  // A fetch from the source failed with `code`.
  void source_error(Code code);

  // A value owned by another component, read at every scrape. `type` is "counter" or "gauge";
  // `name` may carry labels (`thimble_cache_bytes{cache="results"}`); readings sharing a base
  // name share one HELP/TYPE header and must be added one after the other.
  void add_reading(std::string name, std::string type, std::string help,
                   std::function<double()> read);

  // The whole exposition, ready to serve as text/plain; version=0.0.4.
  std::string render() const;

  std::int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  std::uint64_t requests(Route route, int status) const;

 private:
  // Statuses Thimble answers with; anything else is counted as "other".
  static constexpr std::array<int, 13> kStatuses = {200, 304, 400, 403, 404, 405, 408,
                                                    413, 415, 500, 502, 503, 504};
  static constexpr std::size_t kStatusSlots = kStatuses.size() + 1;
  static std::size_t status_slot(int status);

  std::atomic<std::int64_t> in_flight_{0};
  std::array<std::atomic<std::uint64_t>, kRouteCount * kStatusSlots> requests_{};
  std::array<std::atomic<std::uint64_t>, 4> cache_outcomes_{};  // hit, miss, coalesced, stored
  std::array<std::atomic<std::uint64_t>, 16> source_errors_{};  // by Code
  std::vector<std::unique_ptr<Histogram>> request_seconds_;     // by Route
  std::vector<std::unique_ptr<Histogram>> stage_seconds_;       // by Stage

  struct Reading {
    std::string name, type, help;
    std::function<double()> read;
  };
  std::vector<Reading> readings_;
};

// The value of the sample `series` (its name and labels, exactly as exposed) in a text
// exposition such as Metrics::render() writes; -1 when absent. For tools and tests that scrape.
inline double exposition_value(std::string_view text, std::string_view series) {
  const std::string prefix = "\n" + std::string(series) + " ";
  const std::size_t at = text.find(prefix);
  if (at == std::string_view::npos) return -1;
  return std::strtod(std::string(text.substr(at + prefix.size(), 32)).c_str(), nullptr);
}

// This process's resident set size and open file descriptors (Linux /proc), for the readings
// `process_resident_memory_bytes` and `process_open_fds`.
double process_resident_bytes();
double process_open_fds();

}  // namespace thimble::proxy
