// cache/: the result cache's LRU order, byte accounting, TTLs (fake clock) and thread-safety.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "cache/result_cache.h"
#include "cache/result_store.h"
#include "cache/single_flight.h"
#include "support.h"

using namespace thimble;
using cache::CachedResult;
using cache::ResultCache;

namespace {

// The single-flight tests wait on real time.
const SystemClock real_clock;

class FakeClock final : public Clock {
 public:
  std::chrono::system_clock::time_point wall_now() const override {
    return std::chrono::system_clock::time_point(offset_.load());
  }
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::time_point(offset_.load());
  }
  void advance(std::chrono::seconds s) { offset_ = offset_.load() + s; }

 private:
  std::atomic<std::chrono::seconds> offset_{std::chrono::seconds(1000)};
};

std::shared_ptr<const CachedResult> entry(std::size_t body_bytes, char fill = 'x') {
  auto value = std::make_shared<CachedResult>();
  value->body.assign(body_bytes, fill);
  value->content_type = "image/jpeg";
  value->etag = "\"e\"";
  return value;
}

constexpr std::chrono::seconds kHour{3600};

}  // namespace

TEST_CASE("a stored entry is a hit, a missing one a miss, and both are counted") {
  FakeClock clock;
  ResultCache cache(1 << 20, 1, clock);
  CHECK(cache.get("a") == nullptr);
  auto value = entry(100);
  cache.put("a", value, kHour);
  CHECK(cache.get("a") == value);
  auto stats = cache.stats();
  CHECK(stats.hits == 1);
  CHECK(stats.misses == 1);
  CHECK(stats.entries == 1);
  CHECK(stats.bytes == ResultCache::charge_of("a", *value));
}

TEST_CASE("the least recently used entries are evicted when the bytes run out") {
  FakeClock clock;
  const std::uint64_t one = ResultCache::charge_of("k1", *entry(1000));
  ResultCache cache(3 * one, 1, clock);
  cache.put("k1", entry(1000), kHour);
  cache.put("k2", entry(1000), kHour);
  cache.put("k3", entry(1000), kHour);
  CHECK(cache.get("k1") != nullptr);  // k1 is now the most recent; k2 the least
  cache.put("k4", entry(1000), kHour);
  CHECK(cache.get("k2") == nullptr);
  CHECK(cache.get("k1") != nullptr);
  CHECK(cache.get("k3") != nullptr);
  CHECK(cache.get("k4") != nullptr);
  CHECK(cache.stats().evictions == 1);
  CHECK(cache.stats().bytes <= 3 * one);
}

TEST_CASE("overwriting a key replaces the entry and its charge") {
  FakeClock clock;
  ResultCache cache(1 << 20, 1, clock);
  cache.put("k", entry(5000, 'a'), kHour);
  cache.put("k", entry(10, 'b'), kHour);
  REQUIRE(cache.get("k") != nullptr);
  CHECK(cache.get("k")->body == std::string(10, 'b'));
  CHECK(cache.stats().entries == 1);
  CHECK(cache.stats().bytes == ResultCache::charge_of("k", *entry(10)));
}

TEST_CASE("entries expire after their TTL on the injected clock") {
  FakeClock clock;
  ResultCache cache(1 << 20, 4, clock);
  cache.put("short", entry(10), std::chrono::seconds(60));
  cache.put("long", entry(10), kHour);
  clock.advance(std::chrono::seconds(59));
  CHECK(cache.get("short") != nullptr);
  clock.advance(std::chrono::seconds(1));
  CHECK(cache.get("short") == nullptr);
  CHECK(cache.get("long") != nullptr);
  CHECK(cache.stats().entries == 1);
}

TEST_CASE("zero TTLs, oversized entries and a zero capacity store nothing") {
  FakeClock clock;
  ResultCache cache(10'000, 2, clock);
  cache.put("zero", entry(10), std::chrono::seconds(0));
  cache.put("huge", entry(6'000), kHour);  // larger than one shard (5000 bytes)
  CHECK(cache.get("zero") == nullptr);
  CHECK(cache.get("huge") == nullptr);
  ResultCache disabled(0, 1, clock);
  disabled.put("k", entry(1), kHour);
  CHECK(disabled.get("k") == nullptr);
}

TEST_CASE("an evicted entry stays valid for a reader that still holds it") {
  FakeClock clock;
  ResultCache cache(ResultCache::charge_of("k", *entry(100)), 1, clock);
  cache.put("k", entry(100, 'q'), kHour);
  auto held = cache.get("k");
  cache.put("j", entry(100), kHour);  // same charge: pushes "k" out
  CHECK(cache.get("k") == nullptr);
  REQUIRE(held != nullptr);
  CHECK(held->body == std::string(100, 'q'));
}

TEST_CASE("concurrent readers and writers keep the accounting consistent") {
  FakeClock clock;
  ResultCache cache(200'000, 8, clock);
  std::vector<std::thread> threads;
  std::atomic<int> found{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        std::string key = "k" + std::to_string((i * 7 + t) % 300);
        if (i % 3 == 0) {
          cache.put(key, entry(static_cast<std::size_t>(100 + i % 900)), kHour);
        } else if (cache.get(key)) {
          ++found;
        }
        if (i % 97 == 0) cache.erase(key);
      }
    });
  }
  for (auto& t : threads) t.join();
  auto stats = cache.stats();
  CHECK(found.load() > 0);
  CHECK(stats.bytes <= 200'000);
  CHECK(stats.hits + stats.misses == 4 * 5000 - 4 * 1667);
}

TEST_CASE("single-flight: concurrent callers of one key share one run of the work") {
  cache::SingleFlight<int> flights;
  std::atomic<int> runs{0};
  std::atomic<int> leaders{0};
  std::vector<std::thread> threads;
  std::vector<int> seen(32, 0);
  const auto deadline = thimble::Deadline::after(real_clock, std::chrono::seconds(10));
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&, i] {
      auto outcome = flights.run("key", deadline, [&] {
        ++runs;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        return 42;
      });
      if (outcome.leader) ++leaders;
      seen[static_cast<std::size_t>(i)] = outcome.value ? *outcome.value : -1;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(runs == 1);
  CHECK(leaders == 1);
  for (int v : seen) CHECK(v == 42);
  CHECK(flights.in_flight() == 0);
  // Once landed, the next call runs again (caching is not its job).
  flights.run("key", deadline, [&] { return ++runs; });
  CHECK(runs == 2);
}

TEST_CASE("single-flight: waiters give up at their own deadline, the leader finishes") {
  cache::SingleFlight<int> flights;
  std::atomic<bool> started{false};
  std::thread leader([&] {
    flights.run("slow", thimble::Deadline::after(real_clock, std::chrono::seconds(10)), [&] {
      started = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      return 1;
    });
  });
  while (!started) std::this_thread::yield();
  auto impatient =
      flights.run("slow", thimble::Deadline::after(real_clock, std::chrono::milliseconds(50)),
                  [] { return 2; });
  CHECK(impatient.value == nullptr);
  CHECK_FALSE(impatient.leader);
  leader.join();
}

TEST_CASE("single-flight: a failure reaches every waiter as the same value") {
  cache::SingleFlight<std::string> flights;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto outcome =
          flights.run("bad", thimble::Deadline::after(real_clock, std::chrono::seconds(5)), [] {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            return std::string("error: source failed");
          });
      if (outcome.value && *outcome.value == "error: source failed") ++errors;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(errors == 8);
}

TEST_CASE("single-flight: parked callers get the leader's value on the thread that lands it") {
  cache::SingleFlight<int> flights;
  const auto now = real_clock.steady_now();
  const auto abandoned = [] { return -1; };
  std::vector<int> seen;
  const auto record = [&](const std::shared_ptr<const int>& value) {
    seen.push_back(value ? *value : -2);
  };
  // The first opens the flight and holds its lease; it is not parked.
  auto first = flights.join_or_open(
      "k", thimble::Deadline(real_clock, now + std::chrono::seconds(5)), record, abandoned);
  CHECK_FALSE(first.joined);
  REQUIRE(first.lease);
  // Later callers whose deadline is no earlier than the flight's park without blocking.
  for (int i = 0; i < 3; ++i) {
    auto next = flights.join_or_open(
        "k", thimble::Deadline(real_clock, now + std::chrono::seconds(6)), record, abandoned);
    CHECK(next.joined);
    CHECK_FALSE(next.lease);
  }
  CHECK(flights.join("k", thimble::Deadline(real_clock, now + std::chrono::seconds(5)), record));
  // One that must be answered before the flight promises to land neither parks nor leads.
  auto hurried = flights.join_or_open(
      "k", thimble::Deadline(real_clock, now + std::chrono::seconds(1)), record, abandoned);
  CHECK_FALSE(hurried.joined);
  CHECK_FALSE(hurried.lease);
  CHECK_FALSE(
      flights.join("k", thimble::Deadline(real_clock, now + std::chrono::seconds(1)), record));
  CHECK(flights.in_flight() == 1);
  CHECK(seen.empty());
  auto value = first.lease->fly([] { return 7; });
  CHECK(*value == 7);
  CHECK(seen == std::vector<int>{7, 7, 7, 7});
  CHECK(flights.in_flight() == 0);
  // No flight in the air: join() parks nothing.
  CHECK_FALSE(
      flights.join("k", thimble::Deadline(real_clock, now + std::chrono::seconds(5)), record));
}

TEST_CASE("single-flight: a lease dropped or failed still answers everyone parked on it") {
  cache::SingleFlight<std::string> flights;
  const auto deadline = thimble::Deadline::after(real_clock, std::chrono::seconds(5));
  std::vector<std::string> seen;
  const auto record = [&](const std::shared_ptr<const std::string>& value) {
    seen.push_back(value ? *value : "null");
  };
  const auto abandoned = [] { return std::string("abandoned"); };
  {
    auto lead = flights.join_or_open("k", deadline, record, abandoned);
    REQUIRE(lead.lease);
    CHECK(flights.join_or_open("k", deadline, record, abandoned).joined);
  }  // the lease is dropped unflown (its job never ran)
  CHECK(seen == std::vector<std::string>{"abandoned"});
  CHECK(flights.in_flight() == 0);

  seen.clear();
  auto lead = flights.join_or_open("k", deadline, record, abandoned);
  CHECK(flights.join("k", deadline, record));
  CHECK_THROWS(lead.lease->fly([]() -> std::string { throw std::runtime_error("bug"); }));
  CHECK(seen == std::vector<std::string>{"null"});
  CHECK(flights.in_flight() == 0);

  seen.clear();
  auto landed = flights.join_or_open("k", deadline, record, abandoned);
  CHECK(flights.join("k", deadline, record));
  landed.lease->land("found meanwhile");
  landed.lease.reset();  // landing once is all: dropping it afterwards adds nothing
  CHECK(seen == std::vector<std::string>{"found meanwhile"});
}

namespace {}  // namespace

TEST_CASE(
    "the directory result store round-trips results at their canonical path, within the TTL") {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("thimble-store-" + std::to_string(::getpid()));
  fs::remove_all(root);
  test::ShiftedClock clock;
  cache::DirectoryStore store(root.string(), std::chrono::seconds(3600), clock);
  CachedResult value;
  value.body = "JPEGDATA";
  value.content_type = "image/jpeg";
  value.etag = "\"abc-1\"";
  value.last_modified = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  value.vary_accept = true;
  value.url_max_age = 120;
  const std::string key = "fit-in/300x200/filters:quality(80)/photos/cat.jpg";
  store.write(key, "photos/cat.jpg", value);
  CHECK(fs::exists(root / key));  // the image itself, where nginx's try_files finds it
  auto back = store.read(key);
  REQUIRE(back != nullptr);
  CHECK(back->body == "JPEGDATA");
  CHECK(back->content_type == "image/jpeg");
  CHECK(back->etag == "\"abc-1\"");
  CHECK(back->last_modified == value.last_modified);
  CHECK(back->vary_accept);
  CHECK(back->url_max_age == 120);
  CHECK(store.read("fit-in/300x200/other.jpg") == nullptr);
  clock.shift = std::chrono::seconds(3601);
  CHECK(store.read(key) == nullptr);  // too old
  clock.shift = std::chrono::seconds(0);
  for (const char* bad : {"../escape.jpg", "/abs.jpg", "a/../b.jpg", "a/./b.jpg", "a//b.jpg", "",
                          ".thimble/variants/photos/cat.jpg/0123456789abcdef"}) {
    CAPTURE(std::string(bad));
    CHECK_FALSE(cache::DirectoryStore::valid_key(bad));
    store.write(bad, "photos/cat.jpg", value);
    CHECK(store.read(bad) == nullptr);
  }
  CHECK_FALSE(fs::exists(root.parent_path() / "escape.jpg"));
  // A damaged sidecar is a miss, never a crash.
  { std::ofstream(root / (key + ".meta")) << "content-type: image/jpeg\nlast-modified-epoch: x\n"; }
  CHECK(store.read(key) == nullptr);
  fs::remove_all(root);
}
