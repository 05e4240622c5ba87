#include "cache/result_cache.h"

#include <functional>

namespace thimble::cache {

namespace {
// Bookkeeping per entry beyond its strings: list node, hash node, control block, headers.
constexpr std::uint64_t kEntryOverhead = 256;
}  // namespace

ResultCache::ResultCache(std::uint64_t capacity_bytes, int shards, const Clock& clock)
    : clock_(clock),
      shard_capacity_(capacity_bytes / static_cast<std::uint64_t>(std::max(shards, 1))) {
  for (int i = 0; i < std::max(shards, 1); ++i) shards_.push_back(std::make_unique<Shard>());
}

std::uint64_t ResultCache::charge_of(const std::string& key, const CachedResult& value) {
  return key.size() + value.body.size() + value.content_type.size() + value.etag.size() +
         kEntryOverhead;
}

ResultCache::Shard& ResultCache::shard_for(const std::string& key) {
  return *shards_[std::hash<std::string>{}(key) % shards_.size()];
}

void ResultCache::remove(Shard& shard, std::list<Node>::iterator it) {
  shard.bytes -= it->charge;
  shard.index.erase(it->key);
  shard.lru.erase(it);
}

std::shared_ptr<const CachedResult> ResultCache::get(const std::string& key) {
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

void ResultCache::put(const std::string& key, std::shared_ptr<const CachedResult> value,
                      std::chrono::seconds ttl) {
  if (!value || ttl.count() <= 0) return;
  const std::uint64_t charge = charge_of(key, *value);
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mutex);
  if (auto found = shard.index.find(key); found != shard.index.end()) remove(shard, found->second);
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

void ResultCache::erase(const std::string& key) {
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mutex);
  if (auto found = shard.index.find(key); found != shard.index.end()) remove(shard, found->second);
}

CacheStats ResultCache::stats() const {
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

}  // namespace thimble::cache
