// S3ResultStore: result storage in an S3 bucket (under a prefix), shared by every replica, and a
// natural primary origin for a CDN (CloudFront origin group: the bucket first, Thimble on 403/404).
// Each result is an object at `<prefix><canonical request path>` with its Content-Type, and its
// other headers (ETag, Last-Modified, max-age, Vary) in x-amz-meta-thimble-* metadata. Objects
// older than the TTL (by their Last-Modified) are misses. Requests are signed like S3Source's.
// The index of each original's variants (cache/result_store.h) is kept as small objects under
// `<prefix>.thimble/variants/`.
//
// Thread-safety: read() and write() may run concurrently.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cache/result_store.h"
#include "proxy/sources/s3_source.h"

namespace thimble::proxy {

class S3ResultStore final : public cache::ResultStore {
 public:
  // `options` name the bucket and key prefix; the byte limit bounds what is read back.
  S3ResultStore(S3SourceOptions options, std::chrono::seconds ttl, const Clock& clock);

  std::shared_ptr<const cache::CachedResult> read(const std::string& key) override;
  void write(const std::string& key, const std::string& image,
             const cache::CachedResult& result) override;
  // Lists the index entries (ListObjectsV2 needs s3:ListBucket), then deletes each variant and
  // its entry.
  cache::PurgeCounts purge(const std::string& image, bool prefix,
                           const Removed& removed = nullptr) override;

 private:
  TransferRequest request_for(const std::string& key) const;
  bool put(const std::string& key, std::string body, const std::vector<std::string>& headers);
  bool remove(const std::string& key);

  S3SourceOptions options_;
  S3Source objects_;  // builds the signed requests
  std::chrono::seconds ttl_;
  const Clock& clock_;
};

}  // namespace thimble::proxy
