// S3ResultStore: result storage in an S3 bucket (under a prefix), shared by every replica, and a
// natural primary origin for a CDN (CloudFront origin group: the bucket first, Thimble on 403/404).
// Each result is an object at `<prefix><canonical request path>` with its Content-Type, and its
// other headers (ETag, Last-Modified, max-age, Vary) in x-amz-meta-thimble-* metadata. Objects
// older than the TTL (by their Last-Modified) are misses. Requests are signed like S3Source's.
//
// Thread-safety: read() and write() may run concurrently.
#pragma once

#include <chrono>
#include <string>

#include "cache/result_store.h"
#include "proxy/sources/s3_source.h"

namespace thimble::proxy {

class S3ResultStore final : public cache::ResultStore {
 public:
  // `options` name the bucket and key prefix; the byte limit bounds what is read back.
  S3ResultStore(S3SourceOptions options, std::chrono::seconds ttl, const Clock& clock);

  std::shared_ptr<const cache::CachedResult> read(const std::string& key) override;
  void write(const std::string& key, const cache::CachedResult& result) override;

 private:
  TransferRequest request_for(const std::string& key) const;

  S3SourceOptions options_;
  S3Source objects_;  // builds the signed requests
  std::chrono::seconds ttl_;
  const Clock& clock_;
};

}  // namespace thimble::proxy
