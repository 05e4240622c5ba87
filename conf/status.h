// Status and Result<T>: the error vocabulary every Thimble module shares.
//
// Errors are values. A Status is either OK or carries a Code and a short public message
// ("signature does not match", "source not found"). Each Code maps, in ONE table below, to the
// HTTP status the origin answers, the reason phrase, and how long a CDN may keep that answer:
// client errors are cacheable for a short, configurable time; origin and server failures are
// never cached, so a passing fault can never become a long-lived cached answer.
// Messages are shown to clients: they name the problem, never internals or stack traces.
//
// Thread-safety: Status and Result are plain values; const use from many threads is safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace thimble {

enum class Code : std::uint8_t {
  kOk,
  kBadSignature,      // signature missing, malformed or wrong; `unsafe` not allowed
  kBadRequest,        // URL does not parse, unknown filter, bad arguments, output too large
  kNotFound,          // the source has no such original; unknown route
  kMethodNotAllowed,  // only GET and HEAD exist
  kUriTooLong,        // the request path is over limits.max_url_bytes
  kHeadersTooLarge,   // request line and headers over server.max_request_bytes
  kMalformedHttp,     // the request is not strict HTTP/1.1 (framing, headers): the connection ends
  kRequestTooLarge,   // a request body over what a GET or HEAD may carry
  kRequestTimeout,    // the request head did not arrive within server.header_timeout_ms
  kHttpVersion,       // an HTTP version other than 1.0 and 1.1
  kSourceForbidden,   // host/bucket not allowed, path escape, private address
  kTooLarge,          // source over the byte or pixel limit
  kUnsupportedMedia,  // not a decodable image, or a format Thimble cannot read
  kUpstreamError,     // the source answered 5xx, refused or reset the connection
  kUpstreamTimeout,   // the source did not answer in time
  kOverloaded,        // worker queue full, or the server is draining
  kInternal,          // a bug or an unexpected library failure
};

// How an error answer may be cached by a CDN.
enum class ErrorCaching : std::uint8_t {
  kShort,    // `public, max-age=<error_max_age>`: the same URL will fail the same way
  kNoStore,  // `no-store`: the failure is transient and must not stick
};

struct CodeInfo {
  int http_status;
  std::string_view reason;  // HTTP reason phrase
  ErrorCaching caching;
};

// The single table mapping every Code to its HTTP answer (SPEC.md §3). Tested row by row.
constexpr CodeInfo code_info(Code code) {
  switch (code) {
    case Code::kOk: return {200, "OK", ErrorCaching::kShort};
    case Code::kBadSignature: return {403, "Forbidden", ErrorCaching::kShort};
    case Code::kBadRequest: return {400, "Bad Request", ErrorCaching::kShort};
    case Code::kNotFound: return {404, "Not Found", ErrorCaching::kShort};
    case Code::kMethodNotAllowed: return {405, "Method Not Allowed", ErrorCaching::kShort};
    case Code::kUriTooLong: return {414, "URI Too Long", ErrorCaching::kShort};
    case Code::kHeadersTooLarge:
      return {431, "Request Header Fields Too Large", ErrorCaching::kNoStore};
    case Code::kMalformedHttp: return {400, "Bad Request", ErrorCaching::kNoStore};
    case Code::kRequestTooLarge: return {413, "Payload Too Large", ErrorCaching::kNoStore};
    case Code::kRequestTimeout: return {408, "Request Timeout", ErrorCaching::kNoStore};
    case Code::kHttpVersion: return {505, "HTTP Version Not Supported", ErrorCaching::kNoStore};
    case Code::kSourceForbidden: return {403, "Forbidden", ErrorCaching::kShort};
    case Code::kTooLarge: return {413, "Payload Too Large", ErrorCaching::kShort};
    case Code::kUnsupportedMedia: return {415, "Unsupported Media Type", ErrorCaching::kShort};
    case Code::kUpstreamError: return {502, "Bad Gateway", ErrorCaching::kNoStore};
    case Code::kUpstreamTimeout: return {504, "Gateway Timeout", ErrorCaching::kNoStore};
    case Code::kOverloaded: return {503, "Service Unavailable", ErrorCaching::kNoStore};
    case Code::kInternal: return {500, "Internal Server Error", ErrorCaching::kNoStore};
  }
  return {500, "Internal Server Error", ErrorCaching::kNoStore};
}

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // Short public description of the problem, e.g. "source not found".
  const std::string& message() const { return message_; }
  int http_status() const { return code_info(code_).http_status; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A T or the Status explaining why there is none. Accessing value() of a failed Result is a bug.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  Result(Code code, std::string message) : status_(code, std::move(message)) {}

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace thimble
