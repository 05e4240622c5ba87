#include "proxy/warm/warmer.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <thread>

#include "proxy/sources/curl_transfer.h"

namespace thimble::proxy {
namespace {

// The short reason of an error answer: its text/plain body, cut to one line.
std::string reason_of(int status, const std::string& body) {
  std::string text = body.substr(0, std::min<std::size_t>(body.find('\n'), 200));
  if (text.empty()) text = "HTTP " + std::to_string(status);
  return text;
}

}  // namespace

WarmOutcome ServiceTarget::make(const std::string& path, const std::string& accept) {
  OriginRequest request;
  request.method = "GET";
  request.path = path;
  if (!accept.empty()) request.headers.emplace_back("accept", accept);
  std::promise<OriginResponse> answered;
  std::future<OriginResponse> answer = answered.get_future();
  service_.submit(
      request, [&answered](OriginResponse response) { answered.set_value(std::move(response)); });
  const OriginResponse response = answer.get();
  WarmOutcome outcome;
  outcome.status = response.status;
  if (response.status != 200) {
    outcome.reason = response.error.empty()
                         ? reason_of(response.status, response.body ? *response.body : "")
                         : response.error;
    return outcome;
  }
  if (response.cache_outcome == "stored" || response.cache_outcome == "hit") {
    outcome.kind = WarmOutcome::Kind::kSkipped;
  } else {
    outcome.kind = WarmOutcome::Kind::kMade;
    outcome.bytes = response.body ? response.body->size() : 0;
  }
  return outcome;
}

WarmOutcome ServerTarget::make(const std::string& path, const std::string& accept) {
  TransferRequest request;
  request.url = base_ + path;
  if (!accept.empty()) request.headers.push_back("Accept: " + accept);
  static const SystemClock clock;
  request.deadline = Deadline::after(clock, timeout_);
  request.max_bytes = 256ull << 20;
  request.user_agent = "thimble-warm";
  const TransferResult result = perform(request);
  WarmOutcome outcome;
  if (result.code != CURLE_OK) {
    outcome.reason = result.timed_out ? "the server did not answer in time"
                                      : std::string("cannot reach the server: ") +
                                            curl_easy_strerror(result.code);
    return outcome;
  }
  outcome.status = static_cast<int>(result.status);
  if (result.status != 200) {
    outcome.reason = reason_of(outcome.status, result.body);
    return outcome;
  }
  // The server decides whether it renders or reads its storage; for the warmer it is done.
  outcome.kind = WarmOutcome::Kind::kMade;
  outcome.bytes = result.body.size();
  return outcome;
}

Warmer::Warmer(Plan plan, const signing::UrlSigner& signer, WarmTarget& target)
    : plan_(std::move(plan)), signer_(signer), target_(target) {
  if (plan_.jobs < 1) plan_.jobs = 1;
}

std::string Warmer::path_of(const WarmVariant& variant, const std::string& key) const {
  const std::string path = variant.prefix + "/" + key;
  return signer_.has_keys() ? signer_.sign(path) : "/unsafe/" + path;
}

void Warmer::warm_one(const std::string& key, WarmSummary& summary, std::mutex& lock,
                      const Progress& progress) {
  for (const WarmVariant& variant : plan_.variants) {
    for (const WarmFormat& format : plan_.formats) {
      const WarmOutcome outcome = target_.make(path_of(variant, key), format.accept);
      std::lock_guard hold(lock);
      switch (outcome.kind) {
        case WarmOutcome::Kind::kMade:
          ++summary.made;
          summary.bytes += outcome.bytes;
          break;
        case WarmOutcome::Kind::kSkipped: ++summary.skipped; break;
        case WarmOutcome::Kind::kFailed: {
          ++summary.failed;
          ++summary.failed_by_reason[(outcome.status ? std::to_string(outcome.status) + " "
                                                     : std::string()) +
                                     outcome.reason];
          if (summary.failures.size() < kMaxListedFailures) {
            summary.failures.push_back(
                {key, variant.label, format.name, outcome.status, outcome.reason});
          } else {
            ++summary.unlisted_failures;
          }
          break;
        }
      }
      if (progress) progress(summary);
    }
  }
  std::lock_guard hold(lock);
  ++summary.originals;
}

WarmSummary Warmer::run(const Feed& feed, const Progress& progress,
                        const std::function<void(const std::string&)>& dry_run_line) {
  const auto started = std::chrono::steady_clock::now();
  WarmSummary summary;
  if (plan_.dry_run) {
    summary.feed_status = feed([&](const std::string& key) {
      for (const WarmVariant& variant : plan_.variants) {
        for (const WarmFormat& format : plan_.formats) {
          if (dry_run_line) dry_run_line(format.name + " " + path_of(variant, key));
        }
      }
      ++summary.originals;
      return !stopping_.load();
    });
    summary.interrupted = stopping_.load();
    summary.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return summary;
  }

  // The feed runs on this thread into a bounded queue; `jobs` threads take originals from it.
  std::mutex lock;  // the summary and the queue
  std::condition_variable changed;
  std::deque<std::string> queue;
  const std::size_t capacity = static_cast<std::size_t>(plan_.jobs) * 16;
  bool feed_over = false;
  std::vector<std::thread> workers;
  for (int i = 0; i < plan_.jobs; ++i) {
    workers.emplace_back([&] {
      while (true) {
        std::string key;
        {
          std::unique_lock hold(lock);
          // Timed: stop() (from the signal thread) is seen within 100 ms.
          while (!changed.wait_for(hold, std::chrono::milliseconds(100), [&] {
            return !queue.empty() || feed_over || stopping_.load();
          })) {
          }
          if (stopping_.load() || queue.empty()) return;
          key = std::move(queue.front());
          queue.pop_front();
        }
        changed.notify_all();
        warm_one(key, summary, lock, progress);
      }
    });
  }
  Status fed = feed([&](const std::string& key) {
    std::unique_lock hold(lock);
    while (!changed.wait_for(hold, std::chrono::milliseconds(100),
                             [&] { return queue.size() < capacity || stopping_.load(); })) {
    }
    if (stopping_.load()) return false;
    queue.push_back(key);
    ++summary.listed;
    changed.notify_all();
    return true;
  });
  {
    std::lock_guard hold(lock);
    feed_over = true;
    summary.listing = false;
    summary.feed_status = fed;
  }
  changed.notify_all();
  for (std::thread& worker : workers) worker.join();
  summary.interrupted = stopping_.load();
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

}  // namespace thimble::proxy
