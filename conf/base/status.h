// Status and Result<T>: the error vocabulary every Thimble module shares.
//
// Errors are values. A Status is either OK or carries a Code and a short public message
// ("signature does not match", "source not found"). What a Code means on the wire (the HTTP
// status and how long a CDN may keep the answer) is the HTTP side's business:
// proxy/service/status_table.h holds that one table. Messages are shown to clients: they name the
// problem, never internals or stack traces.
//
// Thread-safety: Status and Result are plain values; const use from many threads is safe.
#pragma once

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

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // Short public description of the problem, e.g. "source not found".
  const std::string& message() const { return message_; }

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
