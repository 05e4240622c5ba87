// The answers the service gives, with their cache policy: errors (SPEC.md §3 table, from
// status_table.h), thumbnails from a finished result (200, or 304 when the client holds that
// version) and plain-text answers. Every Cache-Control, Expires, ETag, Last-Modified and Vary
// header the service sends is written here.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cache/result_cache.h"
#include "conf/base/status.h"
#include "conf/config.h"
#include "proxy/service/exchange.h"

namespace thimble::proxy {

// What a request says about the version it already holds.
struct Conditions {
  std::string if_none_match;      // If-None-Match, "" when absent
  std::string if_modified_since;  // If-Modified-Since, "" when absent

  bool any() const { return !if_none_match.empty() || !if_modified_since.empty(); }
};

// The answer for an error Status: its HTTP status, a short text body quoting at most 200
// characters of the message, and Cache-Control `max-age=error_max_age` or `no-store` as the
// status table says (never long-lived).
OriginResponse error_answer(const Status& status, Route route,
                            const conf::CacheControlConfig& cache_control);

// 200 with the result's bytes (shared, never copied), or 304 when `conditions` name its version:
// If-None-Match when present, else If-Modified-Since against its Last-Modified.
OriginResponse result_answer(std::shared_ptr<const cache::CachedResult> result,
                             const Conditions& conditions,
                             const conf::CacheControlConfig& cache_control,
                             std::chrono::system_clock::time_point now);

// The 304 of a revalidation the source answered "unchanged", with the validators of a 200.
OriginResponse not_modified_answer(
    const std::string& etag,
    const std::optional<std::chrono::system_clock::time_point>& last_modified, bool vary_accept,
    std::optional<int> url_max_age, const conf::CacheControlConfig& cache_control,
    std::chrono::system_clock::time_point now);

// A plain-text answer that no cache keeps (health, metrics).
OriginResponse uncached_text_answer(int status, Route route, std::string content_type,
                                    std::string text);

}  // namespace thimble::proxy
