// Warmer: makes the variants of a library of originals ahead of time (thimble-warm), through the
// server's own OriginService, so every variant has the bytes, ETag and result-storage key a
// request for it would have: the CDN, nginx try_files and every replica then hit.
//
// What it makes is a plan: the variants (a preset or an options string) times the formats (the
// answer without negotiation, or the one an Accept header negotiates) for every original the key
// feed yields. One original is one task: its variants run one after the other on one thread, so
// they share one fetch (the service keeps the original) and smart/ focal points. The feed streams
// into a bounded queue: memory does not grow with the library.
//
// A variant goes to a Target: in this process (the configured source and result storage; with
// revalidate_s 0, so a stored variant is checked against its original and skipped when it is up
// to date), or a running server over HTTP (which stores it itself).
//
// Thread-safety: run() once per Warmer; stop() from any thread (a signal handler's thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "conf/base/status.h"
#include "proxy/service/origin_service.h"
#include "signing/signer.h"

namespace thimble::proxy {

// One variant of the plan: what stands before the image in its URL.
struct WarmVariant {
  std::string label;   // "preset:small" or "fit-in/300x200"
  std::string prefix;  // the same, the path segment(s) before the image key
};

// One format of the plan: the Accept header that makes it ("" for the answer without
// negotiation, the original's own format or what the URL's format() says).
struct WarmFormat {
  std::string name;  // "jpeg", "webp", "avif"
  std::string accept;
};

// What became of one variant in one format.
struct WarmOutcome {
  enum class Kind { kMade, kSkipped, kFailed };
  Kind kind = Kind::kFailed;
  int status = 0;           // the HTTP status the server answers with
  std::string reason;       // for failures
  std::uint64_t bytes = 0;  // written (made) results
};

// Where a variant is made.
class WarmTarget {
 public:
  virtual ~WarmTarget() = default;
  // `path` is the request path (`/<signature>/<options>/<image>`), `accept` the header to send.
  virtual WarmOutcome make(const std::string& path, const std::string& accept) = 0;
};

// In this process, through an OriginService with no worker pool (the calling thread works).
class ServiceTarget final : public WarmTarget {
 public:
  explicit ServiceTarget(const OriginService& service) : service_(service) {}
  WarmOutcome make(const std::string& path, const std::string& accept) override;

 private:
  const OriginService& service_;
};

// A running Thimble (or the CDN in front of it) at `base_url`.
class ServerTarget final : public WarmTarget {
 public:
  ServerTarget(std::string base_url, std::chrono::milliseconds timeout)
      : base_(std::move(base_url)), timeout_(timeout) {}
  WarmOutcome make(const std::string& path, const std::string& accept) override;

 private:
  std::string base_;
  std::chrono::milliseconds timeout_;
};

struct WarmFailure {
  std::string key, variant, format;
  int status = 0;
  std::string reason;
};

struct WarmSummary {
  std::uint64_t originals = 0;  // originals taken from the feed and done
  std::uint64_t listed = 0;     // keys the feed has given so far
  bool listing = true;          // the feed has more to give (the total is not known yet)
  std::uint64_t made = 0, skipped = 0, failed = 0;
  std::uint64_t bytes = 0;
  std::map<std::string, std::uint64_t> failed_by_reason;  // "415 the source is not an image"
  std::vector<WarmFailure> failures;                      // the first kMaxListedFailures
  std::uint64_t unlisted_failures = 0;
  bool interrupted = false;
  Status feed_status;  // why the feed stopped early, if it did
  double seconds = 0;
};

class Warmer {
 public:
  static constexpr std::size_t kMaxListedFailures = 1000;

  // The keys to warm: calls `each` with every image key (percent-encoded, as in a URL) until it
  // returns false.
  using Feed = std::function<Status(const std::function<bool(const std::string&)>& each)>;
  // Called every time a variant is done (progress display); from worker threads, serialised.
  using Progress = std::function<void(const WarmSummary&)>;

  struct Plan {
    std::vector<WarmVariant> variants;
    std::vector<WarmFormat> formats;
    int jobs = 1;
    bool dry_run = false;  // list what would be asked for; make nothing
  };

  // `signer` without keys signs nothing: URLs go out as /unsafe/.
  Warmer(Plan plan, const signing::UrlSigner& signer, WarmTarget& target);

  WarmSummary run(const Feed& feed, const Progress& progress,
                  const std::function<void(const std::string&)>& dry_run_line = nullptr);
  // Takes no new original; the ones in flight finish.
  void stop() { stopping_.store(true); }

 private:
  // The request path of `variant` of `key`.
  std::string path_of(const WarmVariant& variant, const std::string& key) const;
  void warm_one(const std::string& key, WarmSummary& summary, std::mutex& lock,
                const Progress& progress);

  Plan plan_;
  const signing::UrlSigner& signer_;
  WarmTarget& target_;
  std::atomic<bool> stopping_{false};
};

}  // namespace thimble::proxy
