// Header policy: the pure functions that decide what a CDN sees in the response headers:
// Cache-Control, HTTP dates, ETags and how If-None-Match / If-Modified-Since / Accept are read.
//
// The ETag format itself is EntityTags' (proxy/service/entity_tag.h); here are the pieces it is
// made of: the transform hash and the reading of If-None-Match.
//
// Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"

namespace thimble::proxy {

using WallTime = std::chrono::system_clock::time_point;

// `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate).
std::string http_date(WallTime t);
// Parses IMF-fixdate; other (obsolete) forms and junk give nullopt.
std::optional<WallTime> parse_http_date(std::string_view text);

// The max-age of a thumbnail: the URL's max_age() filter when given, else the configured one.
int max_age_for(const conf::CacheControlConfig& config, std::optional<int> url_max_age);

// `public, max-age=N[, s-maxage=M][, stale-while-revalidate=K]` for a thumbnail. A URL's own
// max_age() replaces both max-age and the configured s-maxage: the app asked for that lifetime.
std::string cache_control_for_success(const conf::CacheControlConfig& config,
                                      std::optional<int> url_max_age);

// 16 lowercase hex digits naming one transform of one image in one output format.
std::string transform_hash(std::string_view canonical_key);

// The entity tags listed in an If-None-Match header, without quotes or W/ prefixes (weak
// comparison, as RFC 9110 prescribes for If-None-Match). `*` is returned as "*".
std::vector<std::string> parse_if_none_match(std::string_view header);

// Whether If-None-Match `header` matches `etag` (quoted, as sent).
bool if_none_match_matches(std::string_view header, std::string_view etag);

// Whether an Accept header admits `type` (say "image/avif") explicitly, not through */* or image/*.
bool accepts_type(std::string_view accept, std::string_view type);

}  // namespace thimble::proxy
