// SingleFlight<V>: request coalescing. When several callers ask for the same key at the same time,
// one of them (the leader) does the work and all of them get its result, or its error, so a storm
// of identical CDN misses costs one fetch and one transform. Nothing is remembered once a flight
// lands (that is the caches' job).
//
// Two ways to wait for a flight:
//   run()           blocks the calling thread until the flight lands or the caller's own deadline
//                   passes (for work already on a worker thread);
//   join_or_open()  never blocks: it hands a callback to the flight, which the thread that lands it
//                   calls. The HTTP reactor parks a storm of identical requests this way, so they
//                   take neither a worker nor a place in the queue. It joins only a flight that
//                   will land by the joiner's deadline, and otherwise opens the flight and returns
//                   its Lease: the holder must do the work (Lease::fly) and land it. A Lease
//                   dropped without landing lands with its `abandoned` value, so no waiter is
//                   ever left behind.
//
// Thread-safety: everything may be called from any thread. Callbacks run outside all locks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "conf/base/deadline.h"

namespace thimble::cache {

template <class V>
class SingleFlight {
  struct Flight;

 public:
  // Called with the flight's value; null when the work threw.
  using Callback = std::function<void(const std::shared_ptr<const V>&)>;

  struct Outcome {
    std::shared_ptr<const V> value;  // null only when this waiter's deadline passed first
    bool leader = false;             // this call did the work
  };

  // The duty to land one flight, from join_or_open().
  class Lease {
   public:
    Lease(SingleFlight& owner, std::string key, std::shared_ptr<Flight> flight,
          std::function<V()> abandoned)
        : owner_(owner),
          key_(std::move(key)),
          flight_(std::move(flight)),
          abandoned_(std::move(abandoned)) {}
    ~Lease() {
      if (!landed_) owner_.land(key_, flight_, std::make_shared<const V>(abandoned_()));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    // Does `work` and lands the flight with its value (with null when it throws, rethrown).
    std::shared_ptr<const V> fly(const std::function<V()>& work) {
      landed_ = true;
      return owner_.fly(key_, flight_, work);
    }
    // Lands the flight with a value found without working (an error, an answer cached meanwhile).
    void land(V value) {
      landed_ = true;
      owner_.land(key_, flight_, std::make_shared<const V>(std::move(value)));
    }

   private:
    SingleFlight& owner_;
    std::string key_;
    std::shared_ptr<Flight> flight_;
    std::function<V()> abandoned_;
    bool landed_ = false;
  };

  // Blocks: the first caller for `key` does `work`; the others wait for its value until their own
  // `deadline`. The deadline is also the leader's promise of when its flight lands.
  Outcome run(const std::string& key, const Deadline& deadline, const std::function<V()>& work) {
    std::shared_ptr<Flight> flight;
    bool leader = false;
    {
      std::lock_guard lock(mutex_);
      auto found = flights_.find(key);
      if (found == flights_.end()) {
        flight = std::make_shared<Flight>(deadline);
        flights_.emplace(key, flight);
        leader = true;
      } else {
        flight = found->second;
      }
    }
    if (leader) return {fly(key, flight, work), true};
    std::unique_lock lock(flight->mutex);
    if (!flight->landed.wait_until(lock, deadline.on_steady_clock(),
                                   [&] { return flight->done; })) {
      return {};
    }
    return {flight->value, false};
  }

  struct Joining {
    bool joined = false;           // `on_land` will be called
    std::shared_ptr<Lease> lease;  // or: the caller opened the flight and must land it
  };
  // Never blocks. A flight for `key` that lands by `deadline` takes `on_land`; with no flight for
  // `key`, one is opened and its Lease returned (landing with `abandoned()` if dropped). When the
  // flight in the air may land later than `deadline`, neither happens: the caller waits its own
  // way.
  Joining join_or_open(const std::string& key, const Deadline& deadline, Callback on_land,
                       std::function<V()> abandoned) {
    std::lock_guard lock(mutex_);
    if (auto found = flights_.find(key); found != flights_.end()) {
      return {try_join(*found->second, deadline, on_land), nullptr};
    }
    auto flight = std::make_shared<Flight>(deadline);
    flights_.emplace(key, flight);
    return {false, std::make_shared<Lease>(*this, key, std::move(flight), std::move(abandoned))};
  }
  // Never blocks: like join_or_open(), but never opens a flight. True when `on_land` was taken.
  bool join(const std::string& key, const Deadline& deadline, Callback on_land) {
    std::lock_guard lock(mutex_);
    auto found = flights_.find(key);
    return found != flights_.end() && try_join(*found->second, deadline, on_land);
  }

  // Flights in the air (for metrics and tests).
  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return flights_.size();
  }

 private:
  struct Flight {
    explicit Flight(const Deadline& by) : deadline(by) {}
    const Deadline deadline;
    std::vector<Callback> joined;  // guarded by SingleFlight::mutex_
    std::mutex mutex;
    std::condition_variable landed;
    bool done = false;
    std::shared_ptr<const V> value;
  };

  // Under mutex_.
  static bool try_join(Flight& flight, const Deadline& deadline, Callback& on_land) {
    if (flight.deadline.at() > deadline.at()) return false;
    flight.joined.push_back(std::move(on_land));
    return true;
  }

  std::shared_ptr<const V> fly(const std::string& key, const std::shared_ptr<Flight>& flight,
                               const std::function<V()>& work) {
    std::shared_ptr<const V> value;
    try {
      value = std::make_shared<const V>(work());
    } catch (...) {
      land(key, flight, nullptr);
      throw;
    }
    land(key, flight, value);
    return value;
  }

  void land(const std::string& key, const std::shared_ptr<Flight>& flight,
            const std::shared_ptr<const V>& value) {
    std::vector<Callback> joined;
    {
      std::lock_guard lock(mutex_);
      if (auto found = flights_.find(key); found != flights_.end() && found->second == flight) {
        flights_.erase(found);
      }
      joined.swap(flight->joined);
    }
    {
      std::lock_guard lock(flight->mutex);
      flight->value = value;
      flight->done = true;
    }
    flight->landed.notify_all();
    for (const Callback& callback : joined) {
      // One waiter's failure must not leave the others without their answer.
      try {
        callback(value);
      } catch (...) {
      }
    }
  }

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace thimble::cache
