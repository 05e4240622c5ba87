#include "proxy/common/metrics.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace thimble::proxy {
namespace {

// From 1 ms (a cache hit is far below) to 30 s (the default request timeout).
constexpr double kDurationBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                      0.25,  0.5,    1,     2.5,  5,     10,   30};

std::string number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<long long>(value));
  }
  char out[32];
  std::snprintf(out, sizeof out, "%.9g", value);
  return out;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, std::string_view name, std::string_view labels, double value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += number(value);
  out += '\n';
}

std::string_view source_error_kind(std::size_t code) {
  switch (static_cast<Code>(code)) {
    case Code::kNotFound: return "not_found";
    case Code::kSourceForbidden: return "forbidden";
    case Code::kTooLarge: return "too_large";
    case Code::kBadRequest: return "bad_request";
    case Code::kUpstreamError: return "upstream_error";
    case Code::kUpstreamTimeout: return "timeout";
    case Code::kOverloaded: return "overloaded";
    case Code::kInternal: return "internal";
    default: return "other";
  }
}

constexpr std::string_view kCacheOutcomes[] = {"hit", "miss", "coalesced", "stored"};

}  // namespace

std::string_view route_name(Route route) {
  switch (route) {
    case Route::kThumbnail: return "thumbnail";
    case Route::kMeta: return "meta";
    case Route::kPreset: return "preset";
    case Route::kHealth: return "health";
    case Route::kMetrics: return "metrics";
    case Route::kOther: return "other";
  }
  return "other";
}

std::string_view stage_name(Stage stage) {
  switch (stage) {
    case Stage::kFetch: return "fetch";
    case Stage::kSniff: return "sniff";
    case Stage::kDecode: return "decode";
    case Stage::kSmart: return "smart";
    case Stage::kTransform: return "transform";
    case Stage::kEncode: return "encode";
  }
  return "other";
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::observe(double seconds) {
  std::size_t slot = 0;
  while (slot < bounds_.size() && seconds > bounds_[slot]) ++slot;
  buckets_[slot].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::max(seconds, 0.0) * 1e9),
                    std::memory_order_relaxed);
}

void Histogram::write(std::string& out, std::string_view name, std::string_view labels) const {
  const std::string prefix = labels.empty() ? "" : std::string(labels) + ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    const double bound = i < bounds_.size() ? bounds_[i] : INFINITY;
    sample(out, std::string(name) + "_bucket", prefix + "le=\"" + number(bound) + "\"",
           static_cast<double>(cumulative));
  }
  sample(out, std::string(name) + "_sum", labels,
         static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
  sample(out, std::string(name) + "_count", labels,
         static_cast<double>(count_.load(std::memory_order_relaxed)));
}

Metrics::Metrics() {
  for (std::size_t i = 0; i < kRouteCount; ++i) {
    request_seconds_.push_back(std::make_unique<Histogram>(kDurationBounds));
  }
  for (std::size_t i = 0; i < kStageCount; ++i) {
    stage_seconds_.push_back(std::make_unique<Histogram>(kDurationBounds));
  }
}

std::size_t Metrics::status_slot(int status) {
  for (std::size_t i = 0; i < kStatuses.size(); ++i) {
    if (kStatuses[i] == status) return i;
  }
  return kStatuses.size();
}

void Metrics::request_finished(Route route, int status, std::string_view cache, double seconds) {
  const auto r = static_cast<std::size_t>(route);
  requests_[r * kStatusSlots + status_slot(status)].fetch_add(1, std::memory_order_relaxed);
  request_seconds_[r]->observe(seconds);
  for (std::size_t i = 0; i < std::size(kCacheOutcomes); ++i) {
    if (cache == kCacheOutcomes[i]) cache_outcomes_[i].fetch_add(1, std::memory_order_relaxed);
  }
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
}

void Metrics::observe_stage(Stage stage, double seconds) {
  stage_seconds_[static_cast<std::size_t>(stage)]->observe(seconds);
}

void Metrics::source_error(Code code) {
  const auto slot = static_cast<std::size_t>(code);
  if (slot < source_errors_.size()) source_errors_[slot].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::add_reading(std::string name, std::string type, std::string help,
                          std::function<double()> read) {
  readings_.push_back({std::move(name), std::move(type), std::move(help), std::move(read)});
}

std::uint64_t Metrics::requests(Route route, int status) const {
  return requests_[static_cast<std::size_t>(route) * kStatusSlots + status_slot(status)].load(
      std::memory_order_relaxed);
}

std::string Metrics::render() const {
  std::string out;
  out.reserve(16384);

  header(out, "thimble_requests_total", "counter", "HTTP requests answered, by route and status.");
  for (std::size_t r = 0; r < kRouteCount; ++r) {
    for (std::size_t s = 0; s < kStatusSlots; ++s) {
      const std::uint64_t n = requests_[r * kStatusSlots + s].load(std::memory_order_relaxed);
      if (n == 0) continue;  // the cross product is mostly empty
      const std::string status = s < kStatuses.size() ? std::to_string(kStatuses[s]) : "other";
      sample(out, "thimble_requests_total",
             "route=\"" + std::string(route_name(static_cast<Route>(r))) + "\",status=\"" + status +
                 "\"",
             static_cast<double>(n));
    }
  }

  header(out, "thimble_request_duration_seconds", "histogram",
         "Time from a request's arrival to its answer, by route.");
  for (std::size_t r = 0; r < kRouteCount; ++r) {
    if (request_seconds_[r]->count() == 0) continue;
    request_seconds_[r]->write(out, "thimble_request_duration_seconds",
                               "route=\"" + std::string(route_name(static_cast<Route>(r))) + "\"");
  }

  header(out, "thimble_stage_duration_seconds", "histogram",
         "Time spent fetching originals and in each stage of the transform.");
  for (std::size_t s = 0; s < kStageCount; ++s) {
    stage_seconds_[s]->write(out, "thimble_stage_duration_seconds",
                             "stage=\"" + std::string(stage_name(static_cast<Stage>(s))) + "\"");
  }

  header(out, "thimble_requests_in_flight", "gauge", "Requests received and not yet answered.");
  sample(out, "thimble_requests_in_flight", "", static_cast<double>(in_flight()));

  header(out, "thimble_cache_requests_total", "counter",
         "Thumbnail requests by result-cache outcome (coalesced: answered by another request's "
         "transform; stored: read from result storage).");
  for (std::size_t i = 0; i < std::size(kCacheOutcomes); ++i) {
    sample(out, "thimble_cache_requests_total",
           "outcome=\"" + std::string(kCacheOutcomes[i]) + "\"",
           static_cast<double>(cache_outcomes_[i].load(std::memory_order_relaxed)));
  }

  header(out, "thimble_source_errors_total", "counter", "Failed fetches of originals, by kind.");
  for (std::size_t c = 1; c < source_errors_.size(); ++c) {
    const std::uint64_t n = source_errors_[c].load(std::memory_order_relaxed);
    if (n == 0) continue;
    sample(out, "thimble_source_errors_total", "kind=\"" + std::string(source_error_kind(c)) + "\"",
           static_cast<double>(n));
  }

  std::string_view previous;
  for (const Reading& reading : readings_) {
    const std::string_view base = std::string_view(reading.name).substr(0, reading.name.find('{'));
    if (base != previous) header(out, base, reading.type, reading.help);
    previous = base;
    const std::size_t brace = reading.name.find('{');
    const std::string labels =
        brace == std::string::npos
            ? ""
            : reading.name.substr(brace + 1, reading.name.size() - brace - 2);
    sample(out, base, labels, reading.read());
  }
  return out;
}

double process_resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  double pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0;
  return pages_resident * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double process_open_fds() {
  std::error_code ec;
  double count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++count;
  }
  return count;
}

}  // namespace thimble::proxy
