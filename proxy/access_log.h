// Logging: operator-facing messages on stderr and one JSON access-log line per request on
// stdout. Lines are written whole under a lock, so concurrent requests never interleave.
#pragma once

#include <string>
#include <string_view>

namespace thimble::proxy {

// `message` on stderr with a level prefix ("info", "warning", "error").
void log_line(std::string_view level, std::string_view message);

struct AccessRecord {
  std::string_view request_id;  // the client's X-Request-Id, or a generated one
  std::string_view method;
  std::string_view path;
  int status = 0;
  std::size_t bytes = 0;
  double total_ms = 0;
  std::string_view cache;   // "hit", "miss", "coalesced", "-"
  std::string_view source;  // the original's key, empty when the request named none
  // Work this request did itself (0 when it did not: cache hits, coalesced waiters).
  double fetch_ms = 0, decode_ms = 0, transform_ms = 0, encode_ms = 0;
  std::string_view error;  // public error message, empty on success
};

void log_access(const AccessRecord& record);

}  // namespace thimble::proxy
