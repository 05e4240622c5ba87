// ResultCache: finished thumbnails kept in memory, so the same thumbnail is never transformed
// twice while it is fresh. A sharded LRU charged by bytes (key + body + fixed overhead): each
// shard has its own lock and an equal share of the capacity, so concurrent lookups rarely
// contend. Entries expire after their TTL, measured on the injected Clock.
//
// Values are immutable and shared (std::shared_ptr<const CachedResult>): a hit hands out the same
// bytes without copying them, and an evicted entry stays valid for readers still holding it.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "conf/clock.h"

namespace thimble::cache {

// A finished answer, as the origin would send it again.
struct CachedResult {
  std::string body;
  std::string content_type;
  std::string etag;  // quoted, strong
  std::optional<std::chrono::system_clock::time_point> last_modified;
  bool vary_accept = false;
  std::optional<int> url_max_age;  // the URL's max_age() filter, when it had one
};

struct CacheStats {
  std::uint64_t hits = 0, misses = 0, insertions = 0, evictions = 0;
  std::uint64_t entries = 0, bytes = 0;
};

class ResultCache {
 public:
  // `capacity_bytes` 0 disables the cache (every get misses, put stores nothing).
  ResultCache(std::uint64_t capacity_bytes, int shards, const Clock& clock);

  ResultCache(const ResultCache&) = delete;
  ResultCache& operator=(const ResultCache&) = delete;

  // The fresh entry for `key`, or nullptr. A hit makes the entry most recently used.
  std::shared_ptr<const CachedResult> get(const std::string& key);

  // Stores `value` for `ttl`, replacing any entry for `key`; evicts least recently used entries
  // of the shard until it fits. An entry larger than a shard's capacity is not stored.
  void put(const std::string& key, std::shared_ptr<const CachedResult> value,
           std::chrono::seconds ttl);

  void erase(const std::string& key);
  CacheStats stats() const;

  // What an entry costs against the capacity.
  static std::uint64_t charge_of(const std::string& key, const CachedResult& value);

 private:
  struct Node {
    std::string key;
    std::shared_ptr<const CachedResult> value;
    std::uint64_t charge;
    std::chrono::steady_clock::time_point expires;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::list<Node> lru;  // front = most recently used
    std::unordered_map<std::string, std::list<Node>::iterator> index;
    std::uint64_t bytes = 0;
    CacheStats stats;
  };

  Shard& shard_for(const std::string& key);
  static void remove(Shard& shard, std::list<Node>::iterator it);

  const Clock& clock_;
  std::uint64_t shard_capacity_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace thimble::cache
