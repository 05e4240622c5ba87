// ResultStore: finished thumbnails kept outside the process, shared by every replica (as Thumbor's
// result storage): a replica that has not made a thumbnail reads it instead of fetching and
// transforming, and a CDN or nginx can serve the stored files directly.
//
// DirectoryStore keeps each result at `<root>/<key>`, where the key is the canonical request path
// (`fit-in/300x200/filters:quality(80)/photos/cat.jpg`, plus `.webp` when WebP was negotiated from
// Accept): the file is the image itself, ready for nginx's try_files, and `<file>.meta` beside it
// holds the headers (content type, ETag, Last-Modified, max-age) other replicas answer with.
// Files are written to a temporary name and renamed, so readers never see half a file; results
// older than the TTL are misses. Keys with `..` segments, absolute keys and NULs are never
// written or read.
//
// Every store also keeps an index of the variants made from each original, so that they can be
// removed in time proportional to their number (a purge, an original that is gone): one small
// entry per variant at `.thimble/variants/<image key>/<16 hex digits>` whose content is the
// variant's key. The results themselves stay at their request paths, where nginx and CloudFront
// look for them; the `.thimble/` folder is never a result's key.
//
// Thread-safety: read() and write() may run concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/result_cache.h"
#include "conf/base/clock.h"

namespace thimble::cache {

// A stored result's headers as name/value pairs (`content-type`, `etag`, `last-modified-epoch`,
// `vary-accept`, `max-age`), the form both stores keep them in (sidecar lines, S3 metadata).
std::vector<std::pair<std::string, std::string>> stored_headers(const CachedResult& result);
// Reads one such pair back into `result`; false when the value is damaged.
bool read_stored_header(CachedResult& result, std::string_view name, std::string_view value);

// The folder (relative to a store's root or prefix) that holds the index of variants.
inline constexpr std::string_view kVariantIndex = ".thimble/variants/";

// Where the index entry of the variant `key` of the original `image` lives, relative to the
// store's root (or prefix); empty when either cannot be stored.
std::string variant_entry(const std::string& image, const std::string& key);
// The index folder of every variant made from `image` (with a trailing slash).
std::string variant_folder(const std::string& image);

// What a purge removed.
struct PurgeCounts {
  std::uint64_t originals = 0;  // originals that had stored variants
  std::uint64_t variants = 0;   // results removed
  std::uint64_t failed = 0;     // removals the store refused (the entry is kept for a retry)
};

class ResultStore {
 public:
  virtual ~ResultStore() = default;
  // The stored result for `key`, with `checked_at` set to when it was written; null when there is
  // none, it is older than the store's TTL, or it is damaged.
  virtual std::shared_ptr<const CachedResult> read(const std::string& key) = 0;
  // Stores `result` as `key`, a variant of the original `image`.
  virtual void write(const std::string& key, const std::string& image,
                     const CachedResult& result) = 0;
  // Called with the key of each variant a purge removed and the image key it was made from.
  using Removed = std::function<void(const std::string& key, const std::string& image)>;
  // Removes every stored variant of the original `image`; with `prefix`, of every original whose
  // key starts with `image` ("" = all of them).
  virtual PurgeCounts purge(const std::string& image, bool prefix,
                            const Removed& removed = nullptr) = 0;
};

class DirectoryStore final : public ResultStore {
 public:
  DirectoryStore(std::string root, std::chrono::seconds ttl, const Clock& clock);

  std::shared_ptr<const CachedResult> read(const std::string& key) override;
  void write(const std::string& key, const std::string& image, const CachedResult& result) override;
  PurgeCounts purge(const std::string& image, bool prefix,
                    const Removed& removed = nullptr) override;

  // Whether `key` may name a result below the root (never inside the `.thimble/` index).
  static bool valid_key(const std::string& key);

 private:
  // Removes the variants of `image` listed in the index folder `folder` (absolute), then the
  // folder.
  void purge_folder(const std::string& image, const std::string& folder, PurgeCounts& counts,
                    const Removed& removed);

  std::string root_;
  std::chrono::seconds ttl_;
  const Clock& clock_;
};

}  // namespace thimble::cache
