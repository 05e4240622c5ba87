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
  int kind = 0;               // the caller's class of request, copied into each Sample
};

// One answered (or failed) request.
struct Sample {
  float at_s = 0;  // when it finished, from the start of the run
  float ms = 0;    // its latency
  int status = 0;  // HTTP status; 0 when there was no HTTP answer
  int curl_code = 0;
  int kind = 0;
};

struct LoadReport {
  std::size_t requests = 0;  // answered (any status)
  std::size_t errors = 0;    // no HTTP answer: refused, reset, timed out
  std::map<long, std::size_t> statuses;
  std::vector<double> latencies_ms;  // per answered request
  double seconds = 0;                // wall time of the whole run
  std::vector<std::string> etags;    // per request of the list, the last ETag seen ("" if none)
  std::vector<Sample> samples;       // every request, when LoadOptions::keep_samples

  double per_second() const { return seconds > 0 ? static_cast<double>(requests) / seconds : 0; }
};

// Sends `total` requests, cycling through `requests`, with `connections` in flight at once spread
// over `threads` client threads (each with its own libcurl multi handle and keep-alive
// connections).
LoadReport run_load(const std::vector<LoadRequest>& requests, std::size_t total, int connections,
                    int threads);

struct LoadOptions {
  std::size_t total = 0;  // requests to send; 0 = until `seconds` have passed
  double seconds = 0;     // with total 0: how long to keep sending
  int connections = 8;
  int threads = 1;
  long timeout_s = 60;        // per request
  bool keep_samples = false;  // fill LoadReport::samples
};

// Cycles through `requests` from a random starting point per thread, as LoadOptions say.
LoadReport run_load(const std::vector<LoadRequest>& requests, const LoadOptions& options);

// One GET on a new connection: status (0 when there was no HTTP answer), body and ETag.
struct HttpAnswer {
  long status = 0;
  std::string body, etag;
};
HttpAnswer http_get(const std::string& url, long timeout_s = 60);

// The `p` quantile (0..1) of `values`, nearest rank; 0 for none.
double percentile(std::vector<double> values, double p);

}  // namespace thimble::bench
