// Logging: operator-facing messages on stderr and one JSON access-log line per request on
// stdout. Lines are written whole, so concurrent requests never interleave.
//
// Access-log lines are collected in memory and written by a background thread at least every
// 20 ms (or as soon as 256 KB are waiting): a cache hit then costs an append, not a write(2) and
// a flush of its own, which at tens of thousands of hits a second was a third of the server's
// time. flush_access_log() writes what is waiting (at shutdown).
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

// Writes every waiting access-log line now.
void flush_access_log();

}  // namespace thimble::proxy
