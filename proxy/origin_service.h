// OriginService: everything an origin does for one request, on plain structs, testable without
// sockets. The HTTP adapter (HttpServer) only converts Pistache requests and responses.
//
// A request is handled in two halves:
//   begin() is cheap and never blocks: routes, signature, URL parsing, result-cache hits and
//           304s from the cache. It runs on the HTTP reactor thread and returns either the final
//           answer or a Job.
//   run()   does the expensive part of a Job: fetch the original and transform it. It runs on a
//           worker thread (it blocks on I/O and burns CPU), and stores its result in the cache.
// handle() does both in a row, for tests and tools.
//
// Identical requests are coalesced: the HTTP adapter offers each Job to coalesce() before queueing
// it. The first of a storm leads (it is queued and does the work); the others are parked on its
// flight and answered from its result by the worker that finishes it, so a storm of any size
// takes one worker and one place in the queue.
//
// Thread-safety: all methods may be called concurrently; the only per-request state the service
// holds is the parked requests' answer callbacks.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cache/lru_map.h"
#include "cache/result_cache.h"
#include "cache/result_store.h"
#include "cache/single_flight.h"
#include "conf/base/clock.h"
#include "conf/config.h"
#include "conf/base/status.h"
#include "proxy/entity_tag.h"
#include "proxy/metrics.h"
#include "proxy/presets.h"
#include "proxy/source.h"
#include "signing/signer.h"
#include "transform/pipeline.h"
#include "transform/spec.h"

namespace thimble::proxy {

// Which routes the listener a request came in on answers: everything; everything but /metrics
// (when an admin listener serves it); or only /healthz, /readyz and /metrics (the admin one).
enum class Listener { kAll, kPublic, kAdmin };

struct OriginRequest {
  std::string method;             // "GET", "HEAD", ...
  std::string path;               // raw request path, still percent-encoded, no query string
  std::string accept;             // Accept header, "" when absent
  std::string if_none_match;      // If-None-Match header, "" when absent
  std::string if_modified_since;  // If-Modified-Since header, "" when absent
  Listener listener = Listener::kAll;
  // The value of the configured signature header (OriginOptions::signature_header), "" when
  // absent or not configured.
  std::string signature{};
};

// Where the time of one request went, for the access log (zero for what it did not do itself:
// a cache hit or a coalesced waiter fetched and transformed nothing).
struct WorkTimes {
  double fetch_ms = 0;
  transform::StageTimes stages;
};

struct OriginResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // never Content-Length
  std::shared_ptr<const std::string> body;                   // null for 304 and HEAD-only info
  std::string cache_outcome = "-";  // "hit", "miss" or "-" (for the access log)
  std::string error;                // the public error message, for the access log
  Route route = Route::kThumbnail;  // for metrics
  std::string source_key;           // the original's key, for the access log
  WorkTimes times;

  const std::string* header(std::string_view name) const;
  std::size_t body_size() const { return body ? body->size() : 0; }
};

struct OriginOptions {
  conf::CacheControlConfig cache_control;
  transform::RenderSettings render;
  bool auto_webp = false;
  std::chrono::milliseconds request_timeout{30000};  // the processing deadline
  std::size_t max_url_bytes = 8192;                  // longer request paths → 414
  transform::SpecLimits spec_limits;
  std::size_t remembered_originals = 10000;  // smart/ focal points kept per original version
  std::chrono::seconds not_found_ttl{10};    // how long a source's 404 is believed; 0 = never
  std::uint64_t original_cache_bytes = 64ull << 20;  // originals kept for their other sizes
  std::chrono::seconds original_ttl{60};             // how long a kept original is used
  PresetTable presets;
  bool only_presets = false;  // refuse URLs that do not name a preset
  // A request header that may carry the signature of a path that has none; "" = never.
  std::string signature_header;

  // Fails when a preset's options do not parse.
  static Result<OriginOptions> from(const conf::Config& config);
};

// What a request reads from the configuration, replaced as a whole by OriginService::reload().
struct ServiceSettings {
  OriginOptions options;
  signing::UrlSigner signer;
  EntityTags etags;         // made from the signer's keys
  std::string fingerprint;  // the output settings that change a thumbnail's bytes
};

// An original as its source gave it, with its header read once per download (none when it is
// no image Thimble knows), so neither the other sizes of a photo kept in memory nor the
// requests sharing its download read it again.
struct FetchedOriginal {
  Result<SourceObject> object;
  std::optional<transform::ImageInfo> header;

  static FetchedOriginal from(Result<SourceObject> fetched);
};
inline std::uint64_t payload_bytes(const FetchedOriginal& original) {
  return original.object.ok()
             ? original.object->bytes.size() + original.object->validators.token.size()
             : 0;
}

// What one transform produced: the finished thumbnail, or why there is none.
using Produced = Result<std::shared_ptr<const cache::CachedResult>>;
using RenderFlights = cache::SingleFlight<Produced>;

// What remains to do for a request that begin() could not answer.
struct Job {
  transform::ThumbnailSpec spec;
  std::string cache_key;
  bool unsafe = false;    // an unsigned /unsafe/ URL
  std::string transform;  // transform_hash(cache_key)
  std::optional<transform::ImageFormat> negotiated;
  bool vary_accept = false;
  std::string if_none_match;
  std::string if_modified_since;
  std::chrono::steady_clock::time_point deadline;
  Route route = Route::kThumbnail;
  std::shared_ptr<const ServiceSettings> settings;  // those the request began with
  // Set by coalesce() when identical requests may park on this one: run() lands it with its
  // answer (dropping the Job unrun answers them 503).
  std::shared_ptr<RenderFlights::Lease> lease;
};

// What an OriginService works with, handed over once at construction. Every pointer must outlive
// the service.
struct ServiceDependencies {
  ServiceDependencies(Source& from, cache::ResultCache& results_in, const Clock& time)
      : source(&from), results(&results_in), clock(&time) {}

  Source* source;               // where originals come from
  cache::ResultCache* results;  // finished thumbnails in memory
  const Clock* clock;           // TTLs and deadlines
  // Result storage shared by replicas: read before fetching an original, written after the
  // answer. Null: none.
  cache::ResultStore* store = nullptr;
  // Runs a task later, off an answer's path (the result-storage writes). Empty: at once.
  std::function<void(std::function<void()>)> defer;
  bool store_unsafe = false;  // results of unsigned /unsafe/ URLs are stored too
  // Fetch and stage durations and source errors are recorded here, and it is served at
  // /metrics. Null: no metrics.
  Metrics* metrics = nullptr;
};

class OriginService {
 public:
  // The sizes of the service's own memories (focal points, originals) are taken from `options`
  // once.
  OriginService(OriginOptions options, signing::UrlSigner signer, ServiceDependencies with);

  // New keys, presets, lifetimes, output settings and limits for the requests that begin after
  // it; requests in flight finish with the settings they began with. Memory sizes stay.
  void reload(OriginOptions options, signing::UrlSigner signer);

  std::variant<OriginResponse, Job> begin(const OriginRequest& request) const;
  // Never blocks. When an identical request is already being made (and will be done by this
  // one's deadline), parks this one: `answer` is called later with its response, on the thread
  // that finishes the work, and the result is true. Otherwise returns false and the caller runs
  // the job; unconditional requests then lead, so the identical ones after them park.
  bool coalesce(Job& job, std::function<void(OriginResponse)> answer) const;
  OriginResponse run(const Job& job) const;
  OriginResponse handle(const OriginRequest& request) const;

  // The answer for an error Status (SPEC.md §3 table), with its cache policy.
  OriginResponse error(const Status& status, Route route = Route::kThumbnail) const;

  // While draining (shutting down), new thumbnail work gets 503 and /readyz says not ready.
  void set_draining() { draining_.store(true); }

  // What the service has done since it started (for tests, logs and metrics).
  struct Counters {
    std::uint64_t fetches = 0;         // requests to the source
    std::uint64_t renders = 0;         // transforms (and meta/ descriptions) made
    std::uint64_t coalesced = 0;       // requests answered by another request's transform
    std::uint64_t not_found_hits = 0;  // 404s answered from memory without asking the source
    std::uint64_t store_hits = 0;      // thumbnails read from result storage
    std::uint64_t original_hits = 0;   // originals taken from memory instead of the source
  };
  Counters counters() const;
  cache::CacheStats original_cache_stats() const { return originals_.stats(); }

  // How many original versions have their smart/ focal points remembered.
  std::size_t remembered_focal_points() const { return focal_memory_.size(); }
  bool draining() const { return draining_.load(); }
  // The request header that may carry a signature; "" when not configured.
  std::string signature_header() const { return settings()->options.signature_header; }

 private:
  // 200, or 304 when the request's If-None-Match (else If-Modified-Since) matches `cached`.
  OriginResponse answer_from(std::shared_ptr<const cache::CachedResult> cached,
                             const std::string& if_none_match,
                             const std::string& if_modified_since) const;
  // The answer of a request that waited for an identical one's transform.
  OriginResponse coalesced_answer(const Job& job,
                                  const std::shared_ptr<const Produced>& produced) const;
  std::shared_ptr<const ServiceSettings> settings() const { return settings_.load(); }
  void add_validators(OriginResponse& response, const std::string& etag,
                      const std::optional<std::chrono::system_clock::time_point>& last_modified,
                      bool vary_accept, std::optional<int> url_max_age) const;

  // smart/ focal points per original version, so its other sizes do not detect again.
  class FocalMemory final : public transform::FocalPointMemory {
   public:
    explicit FocalMemory(std::size_t capacity) : points_(capacity) {}
    std::optional<std::vector<transform::FocalPoint>> recall(const std::string& key) override {
      return points_.get(key);
    }
    void remember(const std::string& key,
                  const std::vector<transform::FocalPoint>& points) override {
      points_.put(key, points);
    }
    std::size_t size() const { return points_.size(); }

   private:
    cache::LruMap<std::vector<transform::FocalPoint>> points_;
  };

  // A watermark original as last fetched, revalidated by its token on every use.
  struct Mark {
    std::string bytes;
    std::string token;
  };
  Result<std::shared_ptr<const Mark>> watermark(
      const std::string& key, std::chrono::steady_clock::time_point deadline) const;
  // The job's deadline on std::chrono::steady_clock (sources and render() use the real clock).
  std::chrono::steady_clock::time_point steady_deadline(const Job& job) const;

  // run()'s answer; the time spent goes into `times`.
  OriginResponse produce_answer(const Job& job, WorkTimes& times) const;
  // One request to the source, counted and timed (into `times` when given).
  Result<SourceObject> timed_fetch(const std::string& key, const FetchConditions& conditions,
                                   WorkTimes* times) const;
  // The original, from one shared download per key at a time; a recent 404 is answered from
  // memory.
  std::shared_ptr<const FetchedOriginal> fetch_original(const std::string& key, const Job& job,
                                                        WorkTimes& times) const;
  // Fetch (unless `original` is given) + transform + store in the result cache; the time spent
  // goes into `times`.
  Result<std::shared_ptr<const cache::CachedResult>> produce(
      const Job& job, const transform::WatermarkSources& marks, const std::string& marks_digest,
      std::shared_ptr<const FetchedOriginal> original, WorkTimes& times) const;

  std::atomic<std::shared_ptr<const ServiceSettings>> settings_;
  mutable FocalMemory focal_memory_;
  mutable cache::LruMap<std::shared_ptr<const Mark>> marks_{256};
  mutable RenderFlights renders_;
  mutable cache::SingleFlight<FetchedOriginal> downloads_;
  mutable cache::LruMap<std::chrono::steady_clock::time_point> not_found_{10000};
  mutable std::atomic<std::uint64_t> fetches_{0}, renders_count_{0}, coalesced_{0},
      not_found_hits_{0}, store_hits_{0};
  mutable std::atomic<std::uint64_t> original_hits_{0};
  cache::ResultStore* const store_;
  const std::function<void(std::function<void()>)> defer_;
  const bool store_unsafe_;
  Metrics* const metrics_;
  Source& source_;
  cache::ResultCache& results_;
  const Clock& clock_;
  // Recent originals, shared with the renders using them (never copied).
  mutable cache::ByteLru<FetchedOriginal> originals_;
  std::atomic<bool> draining_{false};
};

}  // namespace thimble::proxy
