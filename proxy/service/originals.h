// Originals: everything the service does to get the bytes a thumbnail is made from. It asks the
// Source (counted and timed), keeps recent originals in memory for their other sizes, remembers a
// source's 404 for a while, shares one download per key among the requests that want it at once,
// and keeps watermark images revalidated by their validator on every use.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/lru_map.h"
#include "cache/result_cache.h"
#include "cache/single_flight.h"
#include "conf/base/clock.h"
#include "conf/base/deadline.h"
#include "conf/config.h"
#include "proxy/common/metrics.h"
#include "proxy/service/exchange.h"
#include "proxy/sources/source.h"
#include "transform/pipeline.h"

namespace thimble::proxy {

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

// The watermark images one thumbnail needs, held while it is made.
struct Marks {
  transform::WatermarkSources sources;  // bytes by source key
  // Each mark's key and source token, for the thumbnail's validator ("" when there are none).
  std::string versions;
  std::vector<std::shared_ptr<const std::string>> held;  // keeps `sources`' bytes alive
};

class Originals {
 public:
  // Keys whose 404 is remembered at most.
  static constexpr std::size_t kRememberedNotFound = 10000;

  // `source`, `clock` and `metrics` (may be null: no metrics) must outlive this. `kept` sizes the
  // memory of originals (original_cache.memory_bytes; 0 = none).
  Originals(Source& source, const Clock& clock, Metrics* metrics,
            const conf::OriginalCacheConfig& kept);

  // One request to the source, counted and timed (into `times` when given).
  Result<SourceObject> fetch(const std::string& key, const FetchConditions& conditions,
                             WorkTimes* times) const;

  // How long a kept original and a source's 404 are believed.
  struct Lifetimes {
    std::chrono::seconds kept{60};
    std::chrono::seconds not_found{10};  // 0: a 404 is never remembered
  };
  // The original: a recent 404 from memory, a kept one, or one download shared by every
  // request for `key` until `deadline`.
  std::shared_ptr<const FetchedOriginal> get(const std::string& key, const Deadline& deadline,
                                             const Lifetimes& lifetimes, WorkTimes& times) const;

  // Whether the original `key` is still the version one of `tokens` names, asked as cheaply as
  // the source can (a stat(), a conditional GET): a result `not_modified`, the changed original
  // with its bytes (kept for the other sizes, as get() keeps it), or the source's failure (a 404
  // is remembered as get() remembers it). A kept original answers without asking; identical
  // checks at once share one request. No `tokens`: the original, as get() gives it.
  std::shared_ptr<const FetchedOriginal> check(const std::string& key,
                                               const std::vector<std::string>& tokens,
                                               const Deadline& deadline, const Lifetimes& lifetimes,
                                               WorkTimes& times) const;

  // The watermark images `keys` name, each revalidated against its source. A mark that is
  // missing or forbidden is the URL's fault (400); a failing source keeps its own status.
  Result<Marks> watermarks(const std::vector<std::string>& keys, const Deadline& deadline) const;

  struct Counters {
    std::uint64_t fetches = 0;         // requests to the source
    std::uint64_t not_found_hits = 0;  // 404s answered from memory without asking the source
    std::uint64_t kept_hits = 0;       // originals taken from memory instead of the source
  };
  Counters counters() const;
  cache::CacheStats kept_stats() const { return kept_.stats(); }

 private:
  // A watermark original as last fetched.
  struct Mark {
    std::shared_ptr<const std::string> bytes;
    std::string token;
  };

  // A download or a check shared by the requests that need it at once; what it brings is kept
  // or remembered for the requests after them.
  std::shared_ptr<const FetchedOriginal> shared_fetch(const std::string& key,
                                                      const FetchConditions& conditions,
                                                      const Lifetimes& lifetimes,
                                                      WorkTimes& times) const;

  Source& source_;
  const Clock& clock_;
  Metrics* const metrics_;
  mutable cache::ByteLru<FetchedOriginal> kept_;
  mutable cache::SingleFlight<FetchedOriginal> downloads_;
  mutable cache::LruMap<std::chrono::steady_clock::time_point> not_found_;
  mutable cache::LruMap<Mark> marks_{256};
  mutable std::atomic<std::uint64_t> fetches_{0}, not_found_hits_{0}, kept_hits_{0};
};

}  // namespace thimble::proxy
