// HttpSource: originals from HTTP(S) origins, fetched with libcurl.
//
// Which URLs an image key may name is configured, never open:
//   - with a base URL, the key is a path appended to it (`..` and `.` segments refused);
//   - otherwise the key is an absolute URL (`https://host/path`, percent-encoded or not) or a
//     Thumbor-style scheme-less one (`host/path`, default scheme https) whose host must be in
//     the allowlist (`host`, `host:port`, `*.example.com`). Credentials in URLs are refused.
// Every connection is checked by the AddressPolicy on the address actually connected (after DNS,
// on every redirect hop); redirects are followed by hand so each hop's host is checked too.
//
// Limits: connect and total timeouts, the byte limit enforced while streaming (not by trusting
// Content-Length), a redirect cap, and retries with backoff for idempotent transient failures
// (5xx, reset) within the deadline. Failures map to what a CDN origin must answer: 404/410 → 404,
// other 4xx → 502, 5xx/refused/reset → 502, timeout → 504, over the byte limit → 413.
//
// Validators: the origin's ETag (or Last-Modified) becomes the validator token, reversibly, so a
// CDN's revalidation becomes a conditional GET and a 304 costs no download.
//
// Thread-safety: fetch() may run concurrently; each thread reuses its own curl handle (and so its
// keep-alive connections).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "proxy/sources/address_policy.h"
#include "proxy/sources/source.h"

namespace thimble::proxy {

struct HttpSourceOptions {
  std::string base_url;                    // "https://images.example.com/originals/" or empty
  std::vector<std::string> allowed_hosts;  // for absolute and scheme-less keys
  std::string default_scheme = "https";    // for scheme-less keys
  std::vector<Network> allowed_networks;   // internal networks that may be reached anyway
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{10000};  // per attempt; retries stay within it too
  int max_redirects = 3;
  int retries = 2;
  std::uint64_t max_bytes = 64ull << 20;
  std::string user_agent = "Thimble";
};

class HttpSource final : public Source {
 public:
  explicit HttpSource(HttpSourceOptions options);

  Result<SourceObject> fetch(std::string_view key, const FetchConditions& conditions) override;

  // The URL an image key names, or why it may not be fetched (400 malformed, 403 not allowed).
  Result<std::string> url_for(std::string_view key) const;
  // Whether a redirect target may be followed (same rules as keys).
  Status check_url(const std::string& url) const;

 private:
  HttpSourceOptions options_;
  AddressPolicy addresses_;
};

}  // namespace thimble::proxy
