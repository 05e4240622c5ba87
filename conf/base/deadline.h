// Deadline: the moment by which a request's work must be done, on the injected Clock. It is the
// only deadline type: the service makes one per request and hands it to the sources and to
// render(), which ask passed() between steps and remaining() for what they wait on (a transfer's
// timeout, a condition variable). A default Deadline never passes.
//
// Thread-safety: a value; the Clock it reads must outlive it and be safe to share (Clock is).
#pragma once

#include <algorithm>
#include <chrono>

#include "conf/base/clock.h"

namespace thimble {

class Deadline {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  Deadline() = default;
  Deadline(const Clock& clock, TimePoint at) : clock_(&clock), at_(at) {}
  // `budget` from now on `clock`.
  static Deadline after(const Clock& clock, std::chrono::steady_clock::duration budget) {
    return {clock, clock.steady_now() + budget};
  }

  bool passed() const { return clock_ && clock_->steady_now() > at_; }
  // What is left, zero once passed; the longest duration for a deadline that never passes.
  std::chrono::steady_clock::duration remaining() const {
    if (!clock_) return std::chrono::steady_clock::duration::max();
    return std::max(at_ - clock_->steady_now(), std::chrono::steady_clock::duration::zero());
  }
  // The same moment on std::chrono::steady_clock, for waits the kernel or the standard library
  // time (condition variables, sockets): now + remaining().
  TimePoint on_steady_clock() const {
    if (!clock_) return TimePoint::max();
    return std::chrono::steady_clock::now() + remaining();
  }
  // The earlier of this one and `budget` from now (a source's own timeout).
  Deadline at_most(std::chrono::steady_clock::duration budget) const {
    const Clock& clock = clock_ ? *clock_ : system_clock();
    const TimePoint capped = clock.steady_now() + budget;
    return {clock, clock_ ? std::min(at_, capped) : capped};
  }
  // On the Clock's own steady timeline (for ordering deadlines).
  TimePoint at() const { return clock_ ? at_ : TimePoint::max(); }

 private:
  static const Clock& system_clock() {
    static const SystemClock clock;
    return clock;
  }

  const Clock* clock_ = nullptr;
  TimePoint at_ = TimePoint::max();
};

}  // namespace thimble
