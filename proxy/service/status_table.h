// The one table from an error Code to its HTTP answer (SPEC.md §3): the status, the reason
// phrase and how long a CDN may keep it. Client errors are cacheable for a short, configurable
// time; origin and server failures are never cached, so a passing fault can never become a
// long-lived cached answer. Tested row by row (tests/test_status_table.cpp).
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "conf/base/status.h"

namespace thimble::proxy {

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

// The HTTP status a Status is answered with.
inline int http_status(const Status& status) {
  return code_info(status.code()).http_status;
}

}  // namespace thimble::proxy
