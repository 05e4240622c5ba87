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
// Thread-safety: read() and write() may run concurrently.
#pragma once

#include <chrono>
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

class ResultStore {
 public:
  virtual ~ResultStore() = default;
  virtual std::shared_ptr<const CachedResult> read(const std::string& key) = 0;
  virtual void write(const std::string& key, const CachedResult& result) = 0;
};

class DirectoryStore final : public ResultStore {
 public:
  DirectoryStore(std::string root, std::chrono::seconds ttl, const Clock& clock);

  std::shared_ptr<const CachedResult> read(const std::string& key) override;
  void write(const std::string& key, const CachedResult& result) override;

  // Whether `key` may name a file below the root.
  static bool valid_key(const std::string& key);

 private:
  std::string root_;
  std::chrono::seconds ttl_;
  const Clock& clock_;
};

}  // namespace thimble::cache
