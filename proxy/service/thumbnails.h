// Thumbnails: makes the answer of a Job. It owns the finished results (the result cache, result
// storage shared by replicas, the render flights that make identical requests share one transform)
// and what renders reuse (smart/ focal points per original version); it times each stage into the
// metrics. Originals come from the Originals it is given.
//
// A Job meets it twice:
//   park()  on the reactor: an identical request already being made takes this one as a waiter,
//           or this one opens the flight and will lead it (it never blocks);
//   make()  on a worker: revalidate with the source, read result storage, fetch, render, store.
//
// Changed originals: every result records when its original was last known to be the version it
// was made from (CachedResult::checked_at). One older than result_storage.revalidate_s, in memory
// or in storage, is not served until the source (a stat(), a conditional GET, shared by the
// requests that need it) says the original is unchanged; a changed original is rendered again and
// replaces it, and one that is gone is a 404 and its stored variants are removed.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cache/lru_map.h"
#include "cache/result_cache.h"
#include "cache/result_store.h"
#include "cache/single_flight.h"
#include "conf/base/clock.h"
#include "proxy/common/metrics.h"
#include "proxy/service/originals.h"
#include "proxy/service/resolver.h"
#include "transform/pipeline.h"

namespace thimble::proxy {

class Thumbnails {
 public:
  // What a Thumbnails works with; every pointer must outlive it.
  struct Dependencies {
    Originals* originals = nullptr;         // where originals and watermark images come from
    cache::ResultCache* results = nullptr;  // finished thumbnails in memory
    const Clock* clock = nullptr;           // TTLs, Expires and deadlines
    // Result storage shared by replicas: read before fetching an original, written after the
    // answer. Null: none.
    cache::ResultStore* store = nullptr;
    // Runs a task later, off an answer's path (the result-storage writes). Empty: at once.
    std::function<void(std::function<void()>)> defer;
    bool store_unsafe = false;   // results of unsigned /unsafe/ URLs are stored too
    Metrics* metrics = nullptr;  // stage durations; null: none
    // Original versions whose focal points are kept (smart.remembered_originals).
    std::size_t remembered_originals = 0;
  };
  explicit Thumbnails(Dependencies with);

  // The answer from the result cache (200, or 304 for the client's version), if it is there.
  std::optional<OriginResponse> cached(const Job& job) const;

  // What a parked request is told when the flight it waits on lands.
  using Answer = std::function<void(OriginResponse)>;
  // The duty to lead a flight: make() with it lands it for every request parked on it; dropped
  // unused, it lands them with 503.
  using Produced = Result<std::shared_ptr<const cache::CachedResult>>;
  using Lead = std::shared_ptr<cache::SingleFlight<Produced>::Lease>;
  struct Parking {
    bool parked = false;  // `answer` will be called with this request's answer
    Lead lead;            // or this request leads (null when it neither leads nor parks)
  };
  // Never blocks. Parks `job` on an identical request being made that will be done by its
  // deadline; otherwise an unconditional request opens the flight and leads it, so the identical
  // ones after it park. A revalidation never leads (the source may answer 304 without a
  // transform) but may wait for one that transforms.
  Parking park(const Job& job, Answer answer) const;

  // The answer of `job` (on a worker); the time spent goes into `times`.
  OriginResponse make(const Job& job, const Lead& lead, WorkTimes& times) const;

  struct Counters {
    std::uint64_t renders = 0;     // transforms (and meta/ descriptions) made
    std::uint64_t coalesced = 0;   // requests answered by another request's transform
    std::uint64_t store_hits = 0;  // thumbnails read from result storage
    std::uint64_t checks = 0;      // held results whose original was checked with the source
  };
  Counters counters() const;
  // How many original versions have their smart/ focal points remembered.
  std::size_t remembered_focal_points() const { return focal_memory_.size(); }

 private:
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

  OriginResponse answer(const Job& job, std::shared_ptr<const cache::CachedResult> result) const;
  OriginResponse failure(const Job& job, const Status& status) const;
  // The answer of a request that waited for an identical one's transform.
  OriginResponse coalesced_answer(const Job& job,
                                  const std::shared_ptr<const Produced>& produced) const;
  // `held` (a result from memory due a check), else result storage (`stored` set), each served once
  // its original is known unchanged; else fetch (unless `original` is given) + transform; then the
  // result cache and a deferred write to storage.
  Produced produce(const Job& job, const Marks& marks, const std::string& marks_digest,
                   std::shared_ptr<const FetchedOriginal> original,
                   std::shared_ptr<const cache::CachedResult> held, WorkTimes& times,
                   bool& stored) const;
  // Whether `result`'s original was last checked result_storage.revalidate_s ago or longer.
  bool due_for_check(const Job& job, const cache::CachedResult& result) const;
  // The job's result-storage key: its canonical request path, plus the negotiated format.
  static std::string store_key(const Job& job);
  // Runs `task` with `defer` (at once without it).
  void later(std::function<void()> task) const;
  // Removes every stored variant of `image` (an original that is gone), later.
  void forget(const std::string& image) const;
  // The original rendered (or described, for meta/) into a result.
  Produced render(const Job& job, const Marks& marks, const FetchedOriginal& original,
                  const std::string& etag, WorkTimes& times) const;
  void keep(const Job& job, const std::shared_ptr<const cache::CachedResult>& result) const;

  Originals& originals_;
  cache::ResultCache& results_;
  const Clock& clock_;
  cache::ResultStore* const store_;
  const std::function<void(std::function<void()>)> defer_;
  const bool store_unsafe_;
  Metrics* const metrics_;
  mutable FocalMemory focal_memory_;
  mutable cache::SingleFlight<Produced> renders_;
  mutable std::atomic<std::uint64_t> renders_count_{0}, coalesced_{0}, store_hits_{0}, checks_{0};
};

}  // namespace thimble::proxy
