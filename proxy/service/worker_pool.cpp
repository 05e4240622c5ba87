#include "proxy/service/worker_pool.h"

#include <algorithm>

namespace thimble::proxy {

WorkerPool::WorkerPool(int threads, std::size_t queue_limit, std::function<void()> thread_init)
    : queue_limit_(queue_limit) {
  for (int i = 0; i < std::max(threads, 1); ++i) {
    threads_.emplace_back([this, thread_init] { work(thread_init); });
  }
}

WorkerPool::~WorkerPool() {
  drain(std::chrono::milliseconds::max());
}

bool WorkerPool::try_submit(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= queue_limit_) return false;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void WorkerPool::work(const std::function<void()>& thread_init) {
  if (thread_init) thread_init();
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to do
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    job();
    {
      std::lock_guard lock(mutex_);
      --running_;
    }
    idle_.notify_all();
  }
}

bool WorkerPool::drain(std::chrono::milliseconds timeout) {
  bool finished = true;
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
    auto done = [this] { return queue_.empty() && running_ == 0; };
    if (timeout == std::chrono::milliseconds::max()) {
      idle_.wait(lock, done);
    } else {
      finished = idle_.wait_for(lock, timeout, done);
    }
  }
  if (finished) {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  return finished;
}

std::size_t WorkerPool::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

std::size_t WorkerPool::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

}  // namespace thimble::proxy
