// EntityTags: the one owner of Thimble's ETag format.
//
//     "<transform>-<source token>[~<marks digest>].<mac>"
//
// <transform> names one transform of one image in one output format (transform_hash), the source
// token is the original's own validator (file mtime+size, an S3/HTTP ETag carried reversibly, a
// time) and the marks digest names the watermark images' versions. <mac> is 16 hex digits of
// HMAC-SHA256 over everything before it, under a key derived from the security keys.
//
// Why the MAC: the source token of an ETag a CDN revalidates with is read back out and turned into
// a conditional request to the origin (If-None-Match / If-Modified-Since). Only validators Thimble
// itself issued may reach an origin: a client could otherwise forge any token, and its decoded
// bytes would become request headers. A token whose MAC does not verify is ignored, and the request
// is answered as if it had no validator. The first key signs; every configured key verifies, so a
// key rotation keeps the ETags CDNs hold. Replicas with the same keys issue the same ETags.
//
// Thread-safety: immutable after construction; share it freely.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace thimble::proxy {

class EntityTags {
 public:
  // `keys`: the security keys (the first issues). With none (an unsafe-only server) a random key
  // of this process issues: its ETags hold until a restart and differ between replicas.
  explicit EntityTags(const std::vector<std::string>& keys);

  // The digest naming the versions of a thumbnail's watermark images, from `key=token;` per
  // mark in the URL's order; "" when there are none.
  static std::string marks_digest(std::string_view mark_versions);

  // The quoted ETag of `transform` made from a source with `source_token` and watermarks whose
  // versions `marks` names (marks_digest(); "" for none).
  std::string make(std::string_view transform, std::string_view source_token,
                   std::string_view marks = {}) const;

  // The source tokens of the If-None-Match entries that Thimble issued for `transform` with the
  // same `marks`: what a conditional fetch may ask the source about. Forged, altered or foreign
  // entries, and entries made with other watermark versions, are left out.
  std::vector<std::string> source_tokens(std::string_view if_none_match, std::string_view transform,
                                         std::string_view marks = {}) const;

  // Whether `etag` is one Thimble issued for `transform`, whatever its source and marks (a
  // stored result made with other output settings names another transform).
  bool issued_for(std::string_view etag, std::string_view transform) const;

 private:
  using Key = std::array<unsigned char, 32>;
  std::string mac(const Key& key, std::string_view transform, std::string_view token) const;
  // The verified `<source token>[~marks]` of each issued entry for `transform`.
  std::vector<std::string> verified(std::string_view if_none_match,
                                    std::string_view transform) const;
  std::vector<Key> keys_;
};

}  // namespace thimble::proxy
