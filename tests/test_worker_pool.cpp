// proxy/WorkerPool: bounded queue, refusal when full, draining.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "proxy/service/worker_pool.h"

using thimble::proxy::WorkerPool;

namespace {
// A gate that holds jobs until opened.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard lock(m);
      open = true;
    }
    cv.notify_all();
  }
};
}  // namespace

TEST_CASE("jobs run on the workers and every accepted job completes") {
  std::atomic<int> done{0};
  {
    WorkerPool pool(2, 1000);
    for (int i = 0; i < 500; ++i) CHECK(pool.try_submit([&] { ++done; }));
    CHECK(pool.drain(std::chrono::seconds(10)));
  }
  CHECK(done == 500);
}

TEST_CASE("a full queue refuses new jobs at once instead of blocking") {
  Gate gate;
  std::atomic<int> started{0};
  WorkerPool pool(1, 2);
  CHECK(pool.try_submit([&] {
    ++started;
    gate.wait();
  }));
  while (started.load() == 0) std::this_thread::yield();  // the worker holds job 1
  CHECK(pool.try_submit([] {}));
  CHECK(pool.try_submit([] {}));
  CHECK_FALSE(pool.try_submit([] {}));  // two waiting: full
  CHECK(pool.queued() == 2);
  CHECK(pool.running() == 1);
  gate.release();
  CHECK(pool.drain(std::chrono::seconds(10)));
}

TEST_CASE("draining refuses new work, and reports when running work outlives the timeout") {
  Gate gate;
  std::atomic<int> started{0};
  WorkerPool pool(1, 4);
  CHECK(pool.try_submit([&] {
    ++started;
    gate.wait();
  }));
  while (started.load() == 0) std::this_thread::yield();
  CHECK_FALSE(pool.drain(std::chrono::milliseconds(50)));
  CHECK_FALSE(pool.try_submit([] {}));
  gate.release();
  CHECK(pool.drain(std::chrono::seconds(10)));
}

TEST_CASE("each worker runs its initialiser once before its first job") {
  std::atomic<int> inits{0};
  {
    WorkerPool pool(3, 10, [&] { ++inits; });
    CHECK(pool.drain(std::chrono::seconds(10)));
  }
  CHECK(inits == 3);
}
