// perform(): one HTTP GET (or PUT) with libcurl, on the calling thread's reused handle, with the
// limits every Thimble fetch has: a deadline (connect and total), a byte limit enforced while
// streaming, an optional address policy checked on every socket, and retries with backoff for
// transient failures (5xx answers, resets, empty answers) while time remains. Redirects are not
// followed: the caller decides (see HttpSource). Shared by the HTTP and S3 sources.
//
// Thread-safety: each thread uses its own curl handle.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/sources/address_policy.h"
#include "proxy/sources/source.h"

namespace thimble::proxy {

struct TransferRequest {
  std::string method = "GET";  // GET, DELETE, or PUT with `body`
  std::string body;
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  Deadline deadline;                 // the whole transfer, retries included
  std::chrono::milliseconds connect_timeout{2000};
  std::uint64_t max_bytes = 0;
  int retries = 0;
  const AddressPolicy* addresses = nullptr;  // null: any address (operator-configured endpoints)
  std::string aws_sigv4;                     // e.g. "aws:amz:us-east-1:s3"; empty: no signing
  std::string credentials;                   // "access_key:secret" for SigV4
  std::string user_agent = "Thimble";
  std::string connect_to;  // CURLOPT_CONNECT_TO entry (tests)
};

struct TransferResult {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::string etag;                                           // as sent, quotes included
  std::string last_modified;                                  // as sent
  std::string redirect_url;                                   // for 3xx answers
  std::vector<std::pair<std::string, std::string>> amz_meta;  // x-amz-meta-* headers (lower-case)
  bool blocked_address = false;  // the address policy refused every address
  bool too_large = false;        // the body went over max_bytes
  bool timed_out = false;        // the deadline passed
  bool unsafe_request = false;   // a header or the URL held CR, LF or NUL: nothing was sent
};

TransferResult perform(const TransferRequest& request);

// The reading shared by every source that fetches over HTTP:
// Transport failures of a finished transfer as the Status an origin answers (403 refused address,
// 413 too large, 504 timeout, 502 otherwise); nullopt when an HTTP answer arrived.
std::optional<Status> transport_failure(const TransferResult& result, std::uint64_t max_bytes);

// Whether `text` is an entity-tag as RFC 9110 §8.8.3 writes it (`"…"` or `W/"…"`, no control
// characters): only such validators are kept from an origin and sent back to it.
bool is_entity_tag(std::string_view text);

// Request headers that turn validator tokens we issued (or a date) into a conditional request;
// a token that does not decode to a valid entity-tag or time is skipped.
std::vector<std::string> conditional_headers(const FetchConditions& conditions);

// A 200 or 304 answer as a SourceObject: the origin's ETag, else its Last-Modified, else the
// content's hash becomes the validator token.
SourceObject object_from(TransferResult&& result, const FetchConditions& conditions);

// Validator tokens for HTTP validators: an ETag (any bytes, carried reversibly) or a time.
std::string token_from_etag(std::string_view etag);
std::string token_from_time(std::chrono::system_clock::time_point t);

}  // namespace thimble::proxy
