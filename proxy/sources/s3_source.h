// S3Source: originals from Amazon S3 or an S3-compatible store (MinIO, Ceph, R2, ...), fetched
// with libcurl and signed with AWS Signature V4.
//
// Which object a key names is configured: a fixed bucket (with an optional key prefix), or the
// key's first segment naming one of several configured buckets (each with its real bucket name,
// key prefix and region: `photos/cat.jpg` may read `originals/cat.jpg` in `acme-photos-eu`).
// Keys may be required to start with an allowed prefix, so tenants (`company_X/plant_Y/...`) stay
// apart. Object keys are percent-encoded the AWS way (every byte but unreserved ones and '/').
//
// Answers: NoSuchKey/404 → 404; AccessDenied → 404 or 403 as configured (S3 says AccessDenied for
// a missing key when ListBucket is not granted); S3 rejecting Thimble's own signature or
// credentials → 502 with a log line (the operator must fix it; never cached); 5xx → 502 after
// retries; timeout → 504; over the byte limit → 413. The object's ETag is the validator, so a
// CDN's revalidation becomes a conditional GET.
//
// Thread-safety: fetch() may run concurrently (one curl handle per thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "proxy/sources/curl_transfer.h"
#include "proxy/sources/source.h"

namespace thimble::proxy {

// What an image key starting with a bucket's name reads.
struct S3Bucket {
  std::string bucket;      // the real bucket name
  std::string key_prefix;  // prepended to the rest of the key
  std::string region;      // empty: S3SourceOptions::region
};

struct S3SourceOptions {
  std::string endpoint;  // "http://127.0.0.1:9000"; empty: AWS (https://s3.<region>.amazonaws.com)
  std::string region = "us-east-1";
  bool path_style = false;  // bucket in the path rather than the host name
  std::string access_key_id, secret_access_key, session_token;
  std::string bucket;      // fixed bucket; empty: the key's first segment names one of `buckets`
  std::string key_prefix;  // prepended to object keys in the fixed bucket
  std::map<std::string, S3Bucket> buckets;        // by the name image keys start with
  std::vector<std::string> allowed_key_prefixes;  // empty: any key
  bool access_denied_as_not_found = true;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{10000};
  int retries = 2;
  std::uint64_t max_bytes = 64ull << 20;
  int list_page_size = 1000;  // keys per ListObjectsV2 page (S3's own maximum)
};

class S3Source final : public Source {
 public:
  explicit S3Source(S3SourceOptions options);

  Result<SourceObject> fetch(std::string_view key, const FetchConditions& conditions) override;

  // The bucket and object key an image key names, or why it may not be fetched.
  struct Location {
    std::string bucket, object;
    std::string region;  // empty: the source's
  };
  Result<Location> locate(std::string_view key) const;
  // The signed GET of one object (exposed so the signing can be checked byte for byte). With
  // `query` (canonical: names sorted, values AWS-encoded), a request to the bucket itself.
  TransferRequest request_for(const Location& location, std::string_view query = {}) const;

  // Lists the objects of `where.bucket` whose keys start with `where.object` with ListObjectsV2,
  // page by page (never the whole listing in memory), calling `each` for every object until it
  // returns false. `direct` lists only the keys with no '/' after the prefix.
  struct Listed {
    std::string key;  // the object key, decoded
    std::uint64_t size = 0;
  };
  Status list(const Location& where, bool direct,
              const std::function<bool(const Listed&)>& each) const;

  // Every image key of the source that starts with `prefix` (fixed bucket, or each named bucket),
  // percent-encoded as a URL carries it.
  Status list_keys(std::string_view prefix,
                   const std::function<bool(const ListedKey&)>& each) override;

 private:
  S3SourceOptions options_;
};

// Percent-encodes an object key as AWS requires: every byte except A-Z a-z 0-9 - . _ ~ and '/'.
std::string aws_encode_key(std::string_view key);

}  // namespace thimble::proxy
