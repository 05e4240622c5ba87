// Source: where originals come from (a local folder now; S3 and HTTP plug in behind the same
// interface). A source turns a raw image key from the URL into the original's bytes plus its
// validators, or into a Status the origin can answer with (404 missing, 403 not allowed,
// 413 too large, 502/504 upstream trouble).
//
// Conditional fetches: when the caller already knows validators of a copy (from a CDN's
// If-None-Match / If-Modified-Since), a source that can tell the original is unchanged answers
// `not_modified` without reading the bytes.
//
// Thread-safety: implementations must allow concurrent fetch() calls.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/base/deadline.h"
#include "conf/base/status.h"

namespace thimble::proxy {

struct SourceValidators {
  // A short token that changes whenever the original changes, safe inside a quoted ETag
  // ([A-Za-z0-9._-]). Files: modification time and size.
  std::string token;
  std::optional<std::chrono::system_clock::time_point> last_modified;
};

struct FetchConditions {
  std::vector<std::string> if_token_in;  // validator tokens the caller holds
  std::optional<std::chrono::system_clock::time_point> if_modified_since;
  // The request's own deadline: a fetch gives up at the earlier of it and the source's timeout.
  Deadline deadline;
};

struct SourceObject {
  bool not_modified = false;  // the conditions matched: `bytes` is empty
  std::string bytes;
  SourceValidators validators;
};

// One original of a listing.
struct ListedKey {
  std::string key;  // the image key, percent-encoded as a URL carries it
};

class Source {
 public:
  virtual ~Source() = default;
  // `key` is the image part of the URL, still percent-encoded.
  virtual Result<SourceObject> fetch(std::string_view key, const FetchConditions& conditions) = 0;

  // Calls `each` with every image key starting with `prefix` (decoded), streaming (a listing is
  // never held whole), until `each` returns false. Sources that cannot list (HTTP) say so.
  virtual Status list_keys(std::string_view prefix,
                           const std::function<bool(const ListedKey&)>& each) {
    (void)prefix;
    (void)each;
    return Status(Code::kBadRequest, "this source cannot list its originals");
  }
};

// Percent-encodes every byte of `bytes` but ASCII letters, digits and those in `kept`.
std::string percent_encode(std::string_view bytes, std::string_view kept);

// Percent-encodes a decoded key as an image key in a URL: every byte but unreserved ones,
// '/' and the sub-delimiters a path may carry.
std::string url_encode_key(std::string_view key);

// Percent-decodes `raw`. Fails on malformed escapes and on decoded NUL bytes.
std::optional<std::string> percent_decode(std::string_view raw);

}  // namespace thimble::proxy
