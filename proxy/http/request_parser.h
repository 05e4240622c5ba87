// parse_request(): one HTTP/1.1 request head read from the bytes a connection has received, the
// strict way RFC 9112 asks of a server that may sit behind a lax front end. Anything a request
// smuggler or a confused proxy could read two ways is refused (400, and the connection closes):
// a bare LF or an obs-fold line, whitespace before a header's colon, a Content-Length that is not
// digits or that disagrees with another, Transfer-Encoding (Thimble takes no request bodies of
// that kind), a missing or repeated Host in HTTP/1.1, control characters in the request line or
// a header value. Bytes after a complete request are left for the next one (pipelining).
//
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace thimble::proxy::http {

struct RequestHead {
  std::string method;
  std::string target;  // the path and query as sent (origin-form; absolute-form is reduced to it)
  int minor_version = 1;  // HTTP/1.<minor_version>
  // Header fields in arrival order, names lower-cased, values without surrounding whitespace.
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = true;  // HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with keep-alive

  // The field's value, repeated fields joined with ", " (RFC 9110 §5.3); "" when absent.
  std::string header(std::string_view lower_case_name) const;
};

struct ParseOutcome {
  enum class State { kIncomplete, kComplete, kRefused };
  State state = State::kIncomplete;
  RequestHead head;
  std::size_t consumed = 0;  // bytes of the input the request took, body included
  int status = 0;            // for kRefused: 400, 413, 431 or 505
  std::string reason;        // for kRefused: short, safe to show to the client
};

struct ParseLimits {
  std::size_t max_head_bytes = 16384;  // request line + headers; more → 431
  std::size_t max_headers = 100;       // header fields; more → 431
  std::size_t max_body_bytes = 16384;  // a Content-Length body, read and ignored; more → 413
};

// Reads the request at the start of `input` (leading empty lines are skipped, as RFC 9112 §2.2
// allows). kIncomplete until the head and its body are all there, but a head that can already be
// told to be malformed is refused at once rather than waited for.
ParseOutcome parse_request(std::string_view input, const ParseLimits& limits);

}  // namespace thimble::proxy::http
