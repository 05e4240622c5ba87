// Clock: the time source injected into everything that reads the time (TTLs, Date and Expires
// headers, deadlines), so tests can control it. SystemClock is the real one; it is stateless and
// safe to share between threads.
#pragma once

#include <chrono>

namespace thimble {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, for HTTP dates (Date, Expires, Last-Modified comparisons).
  virtual std::chrono::system_clock::time_point wall_now() const = 0;
  // Monotonic time, for TTLs and deadlines.
  virtual std::chrono::steady_clock::time_point steady_now() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point wall_now() const override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::now();
  }
};

}  // namespace thimble
