// SingleFlight<V>: request coalescing. When several callers ask for the same key at the same time,
// one of them (the leader) does the work and all of them get its result, or its error, so a storm
// of identical CDN misses costs one fetch and one transform. Each waiter gives up at its own
// deadline; the leader always finishes its work. Nothing is remembered once a flight lands (that
// is the caches' job).
//
// Thread-safety: run() may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace thimble::cache {

template <class V>
class SingleFlight {
 public:
  struct Outcome {
    std::shared_ptr<const V> value;  // null only when this waiter's deadline passed first
    bool leader = false;             // this call did the work
  };

  Outcome run(const std::string& key, std::chrono::steady_clock::time_point deadline,
              const std::function<V()>& work) {
    std::shared_ptr<Flight> flight;
    bool leader = false;
    {
      std::lock_guard lock(mutex_);
      auto found = flights_.find(key);
      if (found == flights_.end()) {
        flight = std::make_shared<Flight>();
        flights_.emplace(key, flight);
        leader = true;
      } else {
        flight = found->second;
      }
    }
    if (leader) {
      std::shared_ptr<const V> value;
      try {
        value = std::make_shared<const V>(work());
      } catch (...) {
        land(key, flight, nullptr);
        throw;
      }
      land(key, flight, value);
      return {value, true};
    }
    std::unique_lock lock(flight->mutex);
    if (!flight->landed.wait_until(lock, deadline, [&] { return flight->done; })) return {};
    return {flight->value, false};
  }

  // Flights in the air (for metrics and tests).
  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return flights_.size();
  }

 private:
  struct Flight {
    std::mutex mutex;
    std::condition_variable landed;
    bool done = false;
    std::shared_ptr<const V> value;
  };

  void land(const std::string& key, const std::shared_ptr<Flight>& flight,
            std::shared_ptr<const V> value) {
    {
      std::lock_guard lock(mutex_);
      flights_.erase(key);
    }
    {
      std::lock_guard lock(flight->mutex);
      flight->value = std::move(value);
      flight->done = true;
    }
    flight->landed.notify_all();
  }

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace thimble::cache
