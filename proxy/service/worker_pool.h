// WorkerPool: a fixed set of threads running jobs from a bounded queue. This is where decoding,
// resizing, encoding and blocking source fetches happen, never on the HTTP reactor thread.
// A full queue refuses new jobs immediately (the caller answers 503 + Retry-After) rather than
// letting requests pile up until they time out.
//
// Thread-safety: try_submit() and the counters may be called from any thread; drain() from one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace thimble::proxy {

class WorkerPool {
 public:
  // `threads` workers (>= 1), at most `queue_limit` jobs waiting. `thread_init` runs once on
  // each worker before its first job.
  WorkerPool(int threads, std::size_t queue_limit, std::function<void()> thread_init = {});
  ~WorkerPool();  // drains without a time limit
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`; false when the queue is full or the pool is draining.
  bool try_submit(std::function<void()> job);

  // Stops accepting jobs and waits up to `timeout` for queued and running jobs to finish.
  // Returns true when everything finished in time. The threads are joined either way once idle.
  bool drain(std::chrono::milliseconds timeout);

  std::size_t queued() const;
  std::size_t running() const;
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void work(const std::function<void()>& thread_init);

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> queue_;
  std::size_t queue_limit_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace thimble::proxy
