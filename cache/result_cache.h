// ByteLru<V>: values kept in memory, a sharded LRU charged by bytes (key + the value's payload +
// a fixed overhead): each shard has its own lock and an equal share of the capacity, so
// concurrent lookups rarely contend. Entries expire after their TTL, measured on the injected
// Clock. It keeps Thimble's finished thumbnails (ResultCache), so the same thumbnail is never
// transformed twice while fresh, and its recent originals, so the second size of a photo does not
// fetch it again. A value type V needs a payload_bytes(const V&) found by argument-dependent
// lookup.
//
// Values are immutable and shared (std::shared_ptr<const V>): a hit hands out the same bytes
// without copying them, and an evicted entry stays valid for readers still holding it.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "conf/base/clock.h"

namespace thimble::cache {

// A finished answer, as the origin would send it again.
struct CachedResult {
  std::string body;
  std::string content_type;
  std::string etag;  // quoted, strong
  std::optional<std::chrono::system_clock::time_point> last_modified;
  bool vary_accept = false;
  std::optional<int> url_max_age;  // the URL's max_age() filter, when it had one
  // When its original was last known to be the version it was made from: its render, its write
  // to result storage, or the last check with the source. Older than result_storage.revalidate_s,
  // it is checked again before being served.
  std::chrono::system_clock::time_point checked_at{};
};
inline std::uint64_t payload_bytes(const CachedResult& r) {
  return r.body.size() + r.content_type.size() + r.etag.size();
}

struct CacheStats {
  std::uint64_t hits = 0, misses = 0, insertions = 0, evictions = 0;
  std::uint64_t entries = 0, bytes = 0;
};

template <class V>
class ByteLru {
 public:
  // Bookkeeping per entry beyond its strings: list node, hash node, control block, headers.
  static constexpr std::uint64_t kEntryOverhead = 256;

  // `capacity_bytes` 0 disables the cache (every get misses, put stores nothing).
  ByteLru(std::uint64_t capacity_bytes, int shards, const Clock& clock)
      : clock_(clock),
        shard_capacity_(capacity_bytes / static_cast<std::uint64_t>(std::max(shards, 1))) {
    for (int i = 0; i < std::max(shards, 1); ++i) shards_.push_back(std::make_unique<Shard>());
  }
  ByteLru(const ByteLru&) = delete;
  ByteLru& operator=(const ByteLru&) = delete;

  // The fresh entry for `key`, or nullptr. A hit makes the entry most recently used.
  std::shared_ptr<const V> get(const std::string& key) {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    auto found = shard.index.find(key);
    if (found == shard.index.end()) {
      ++shard.stats.misses;
      return nullptr;
    }
    if (found->second->expires <= clock_.steady_now()) {
      remove(shard, found->second);
      ++shard.stats.misses;
      return nullptr;
    }
    shard.lru.splice(shard.lru.begin(), shard.lru, found->second);
    ++shard.stats.hits;
    return found->second->value;
  }

  // Stores `value` for `ttl`, replacing any entry for `key`; evicts least recently used entries
  // of the shard until it fits. An entry larger than a shard's capacity is not stored.
  void put(const std::string& key, std::shared_ptr<const V> value, std::chrono::seconds ttl) {
    if (!value || ttl.count() <= 0) return;
    const std::uint64_t charge = charge_of(key, *value);
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    if (auto found = shard.index.find(key); found != shard.index.end()) {
      remove(shard, found->second);
    }
    if (charge > shard_capacity_) return;
    while (shard.bytes + charge > shard_capacity_ && !shard.lru.empty()) {
      remove(shard, std::prev(shard.lru.end()));
      ++shard.stats.evictions;
    }
    shard.lru.push_front(Node{key, std::move(value), charge, clock_.steady_now() + ttl});
    shard.index.emplace(key, shard.lru.begin());
    shard.bytes += charge;
    ++shard.stats.insertions;
  }

  void erase(const std::string& key) {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    if (auto found = shard.index.find(key); found != shard.index.end()) {
      remove(shard, found->second);
    }
  }

  CacheStats stats() const {
    CacheStats total;
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard->mutex);
      total.hits += shard->stats.hits;
      total.misses += shard->stats.misses;
      total.insertions += shard->stats.insertions;
      total.evictions += shard->stats.evictions;
      total.entries += shard->index.size();
      total.bytes += shard->bytes;
    }
    return total;
  }

  // What an entry costs against the capacity.
  static std::uint64_t charge_of(const std::string& key, const V& value) {
    return key.size() + payload_bytes(value) + kEntryOverhead;
  }

 private:
  struct Node {
    std::string key;
    std::shared_ptr<const V> value;
    std::uint64_t charge;
    std::chrono::steady_clock::time_point expires;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::list<Node> lru;  // front = most recently used
    std::unordered_map<std::string, typename std::list<Node>::iterator> index;
    std::uint64_t bytes = 0;
    CacheStats stats;
  };

  Shard& shard_for(const std::string& key) {
    return *shards_[std::hash<std::string>{}(key) % shards_.size()];
  }
  static void remove(Shard& shard, typename std::list<Node>::iterator it) {
    shard.bytes -= it->charge;
    shard.index.erase(it->key);
    shard.lru.erase(it);
  }

  const Clock& clock_;
  std::uint64_t shard_capacity_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

using ResultCache = ByteLru<CachedResult>;

}  // namespace thimble::cache
