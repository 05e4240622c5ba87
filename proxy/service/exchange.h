// What goes into the OriginService and what comes out: plain structs, no sockets. The HTTP
// adapter (proxy/http/) turns bytes into an OriginRequest and an OriginResponse into bytes; tests
// build them directly.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/common/metrics.h"
#include "transform/pipeline.h"

namespace thimble::proxy {

// Which routes the listener a request came in on answers: everything; everything but /metrics
// (when an admin listener serves it); or only /healthz, /readyz and /metrics (the admin one).
enum class Listener { kAll, kPublic, kAdmin };

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct OriginRequest {
  std::string method;  // "GET", "HEAD", ...
  std::string path;    // raw request path, still percent-encoded, no query string
  // The request's header fields, names lower-cased (the service reads Accept, If-None-Match,
  // If-Modified-Since and the configured signature header).
  HeaderList headers;
  Listener listener = Listener::kAll;

  // The field's value, "" when absent; `lower_case_name` as stored.
  std::string_view header(std::string_view lower_case_name) const;
};

// Where the time of one request went, for the access log (zero for what it did not do itself:
// a cache hit or a coalesced waiter fetched and transformed nothing).
struct WorkTimes {
  double fetch_ms = 0;
  transform::StageTimes stages;
};

struct OriginResponse {
  int status = 200;
  HeaderList headers;                       // never Content-Length
  std::shared_ptr<const std::string> body;  // null for 304 and HEAD-only info
  // "hit" (memory), "stored" (result storage), "miss", "coalesced" or "-" (for the access log)
  std::string cache_outcome = "-";
  std::string error;                // the public error message, for the access log
  Route route = Route::kThumbnail;  // for metrics
  std::string source_key;           // the original's key, for the access log
  WorkTimes times;

  // The header's value (name compared without case), null when absent.
  const std::string* header(std::string_view name) const;
  std::size_t body_size() const { return body ? body->size() : 0; }
};

}  // namespace thimble::proxy
