// Server mode of thimble-bench: drives a running `thimble` over HTTP/1.1 keep-alive connections
// with libcurl's multi interface, a fixed number of requests in flight at any time, and reports
// what came back: requests/s, latency percentiles, status counts, transport errors.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace thimble::bench {

struct LoadRequest {
  std::string url;
  std::string if_none_match;  // sent as If-None-Match when not empty
};

struct LoadReport {
  std::size_t requests = 0;  // answered (any status)
  std::size_t errors = 0;    // no HTTP answer: refused, reset, timed out
  std::map<long, std::size_t> statuses;
  std::vector<double> latencies_ms;  // per answered request
  double seconds = 0;                // wall time of the whole run
  std::vector<std::string> etags;    // per request of the list, the last ETag seen ("" if none)

  double per_second() const { return seconds > 0 ? static_cast<double>(requests) / seconds : 0; }
};

// Sends `total` requests, cycling through `requests`, with `connections` in flight at once spread
// over `threads` client threads (each with its own libcurl multi handle and keep-alive
// connections).
LoadReport run_load(const std::vector<LoadRequest>& requests, std::size_t total, int connections,
                    int threads);

}  // namespace thimble::bench
