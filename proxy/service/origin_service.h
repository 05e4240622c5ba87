// OriginService: everything an origin does for a request, on plain structs (exchange.h), testable
// without sockets. submit() is its only entry; the HTTP adapter (proxy/http/) and the tests call
// the same one.
//
// A request goes through three collaborators, each with one job:
//   Resolver     route, signature, preset, spec, negotiation, cache key → a Job or an early
//                answer (health, metrics, every 4xx);
//   Thumbnails   result cache, coalescing, result storage, render, stage metrics;
//   Originals    the source, kept originals, 404 memory, download flights, watermark images.
// What is cheap (early answers, cache hits, 304s from the cache, parking on an identical request
// in progress) is answered on the calling thread, the HTTP reactor; the rest is queued on the
// bounded WorkerPool, and a full queue is a 503 at once. A storm of identical requests takes one
// worker and one place in the queue: the first leads, the others are answered from its result.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "cache/result_cache.h"
#include "cache/result_store.h"
#include "conf/base/clock.h"
#include "conf/config.h"
#include "proxy/common/metrics.h"
#include "proxy/service/exchange.h"
#include "proxy/service/originals.h"
#include "proxy/service/resolver.h"
#include "proxy/service/settings.h"
#include "proxy/service/thumbnails.h"
#include "proxy/service/worker_pool.h"
#include "proxy/sources/source.h"
#include "signing/signer.h"

namespace thimble::proxy {

// What an OriginService works with, handed over once at construction. Every pointer must outlive
// the service.
struct ServiceDependencies {
  ServiceDependencies(Source& from, cache::ResultCache& results_in, const Clock& time)
      : source(&from), results(&results_in), clock(&time) {}

  Source* source;               // where originals come from
  cache::ResultCache* results;  // finished thumbnails in memory
  const Clock* clock;           // TTLs, dates and deadlines: the only clock the service reads
  // Where fetches and transforms run. Null: on the thread that calls submit(), which then
  // returns only once the request is answered (tools and tests that want no threads).
  WorkerPool* workers = nullptr;
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

  using Completion = std::function<void(OriginResponse)>;
  // Answers `request`: `done` is called once with the response, on this thread when the answer is
  // cheap, else later on a worker thread (or on the one finishing an identical request).
  void submit(const OriginRequest& request, Completion done) const;

  // The answer for an error Status (SPEC.md §3 table), with its cache policy; for what the HTTP
  // adapter refuses itself (malformed requests, timeouts).
  OriginResponse error(const Status& status, Route route = Route::kThumbnail) const;

  // While draining (shutting down), new thumbnail work gets 503 and /readyz says not ready.
  void set_draining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  // What the service has done since it started (for tests, logs and metrics).
  struct Counters {
    std::uint64_t fetches = 0;         // requests to the source
    std::uint64_t renders = 0;         // transforms (and meta/ descriptions) made
    std::uint64_t coalesced = 0;       // requests answered by another request's transform
    std::uint64_t not_found_hits = 0;  // 404s answered from memory without asking the source
    std::uint64_t store_hits = 0;      // thumbnails read from result storage
    std::uint64_t original_hits = 0;   // originals taken from memory instead of the source
    std::uint64_t checks = 0;          // held results whose original was checked (revalidate_s)
  };
  Counters counters() const;
  cache::CacheStats original_cache_stats() const { return originals_.kept_stats(); }
  // How many original versions have their smart/ focal points remembered.
  std::size_t remembered_focal_points() const { return thumbnails_.remembered_focal_points(); }

 private:
  std::shared_ptr<const ServiceSettings> settings() const { return settings_.load(); }
  // The work of an accepted job, on a worker.
  OriginResponse run(const Job& job, const Thumbnails::Lead& lead) const;

  std::atomic<std::shared_ptr<const ServiceSettings>> settings_;
  const Clock& clock_;
  WorkerPool* const workers_;
  Resolver resolver_;
  Originals originals_;
  Thumbnails thumbnails_;
  std::atomic<bool> draining_{false};
};

}  // namespace thimble::proxy
