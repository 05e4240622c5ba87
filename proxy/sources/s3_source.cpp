#include "proxy/sources/s3_source.h"

#include <algorithm>

#include "proxy/common/access_log.h"

namespace thimble::proxy {
namespace {

// The <Code> of an S3 XML error body, e.g. "NoSuchKey".
std::string s3_error_code(const std::string& body) {
  const std::size_t open = body.find("<Code>");
  const std::size_t close = body.find("</Code>");
  if (open == std::string::npos || close == std::string::npos || close < open) return {};
  return body.substr(open + 6, close - open - 6);
}

}  // namespace

std::string aws_encode_key(std::string_view key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : key) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

S3Source::S3Source(S3SourceOptions options) : options_(std::move(options)) {}

Result<S3Source::Location> S3Source::locate(std::string_view key) const {
  std::optional<std::string> path = percent_decode(key);
  if (!path) return Status(Code::kBadRequest, "the image key is not validly percent-encoded");
  Location location;
  if (!options_.bucket.empty()) {
    location.bucket = options_.bucket;
    location.object = options_.key_prefix + *path;
  } else {
    const std::size_t slash = path->find('/');
    if (slash == std::string::npos || slash == 0) {
      return Status(Code::kBadRequest, "the image key must start with a bucket name");
    }
    auto named = options_.buckets.find(path->substr(0, slash));
    if (named == options_.buckets.end()) {
      return Status(Code::kSourceForbidden, "the bucket is not allowed");
    }
    if (slash + 1 == path->size()) return Status(Code::kBadRequest, "the image key is empty");
    location.bucket = named->second.bucket;
    location.object = named->second.key_prefix + path->substr(slash + 1);
    location.region = named->second.region;
  }
  if (location.object.empty()) return Status(Code::kBadRequest, "the image key is empty");
  if (!options_.allowed_key_prefixes.empty() &&
      std::none_of(
          options_.allowed_key_prefixes.begin(), options_.allowed_key_prefixes.end(),
          [&](const std::string& prefix) { return location.object.starts_with(prefix); })) {
    return Status(Code::kSourceForbidden, "the image key is outside the allowed prefixes");
  }
  return location;
}

TransferRequest S3Source::request_for(const Location& location) const {
  const std::string& region = location.region.empty() ? options_.region : location.region;
  const std::string endpoint =
      options_.endpoint.empty() ? "https://s3." + region + ".amazonaws.com" : options_.endpoint;
  const std::size_t scheme_end = endpoint.find("://");
  const std::string scheme = endpoint.substr(0, scheme_end + 3);
  const std::string host = endpoint.substr(scheme_end + 3);
  TransferRequest request;
  request.url = options_.path_style
                    ? endpoint + "/" + location.bucket + "/" + aws_encode_key(location.object)
                    : scheme + location.bucket + "." + host + "/" + aws_encode_key(location.object);
  // curl signs, but does not add, the payload hash S3 requires.
  request.headers.push_back("x-amz-content-sha256: UNSIGNED-PAYLOAD");
  if (!options_.session_token.empty()) {
    request.headers.push_back("x-amz-security-token: " + options_.session_token);
  }
  if (!options_.access_key_id.empty()) {  // no credentials: a public bucket, unsigned
    request.aws_sigv4 = "aws:amz:" + region + ":s3";
    request.credentials = options_.access_key_id + ":" + options_.secret_access_key;
  }
  request.connect_timeout = options_.connect_timeout;
  request.max_bytes = options_.max_bytes;
  request.retries = options_.retries;
  return request;
}

Result<SourceObject> S3Source::fetch(std::string_view key, const FetchConditions& conditions) {
  Result<Location> location = locate(key);
  if (!location.ok()) return location.status();
  TransferRequest request = request_for(*location);
  for (const std::string& h : conditional_headers(conditions)) request.headers.push_back(h);
  request.deadline = conditions.deadline.at_most(options_.timeout);
  TransferResult result = perform(request);
  if (std::optional<Status> failed = transport_failure(result, options_.max_bytes)) return *failed;
  if (result.status == 200 || result.status == 304)
    return object_from(std::move(result), conditions);
  const std::string code = s3_error_code(result.body);
  if (result.status == 404) return Status(Code::kNotFound, "source not found");
  if (result.status == 403 && code == "AccessDenied") {
    return options_.access_denied_as_not_found
               ? Status(Code::kNotFound, "source not found")
               : Status(Code::kSourceForbidden, "access denied by the store");
  }
  log_line("warning", "S3 answered " + std::to_string(result.status) + " " + code + " for " +
                          location->bucket + "/" + location->object);
  return Status(Code::kUpstreamError, "the store answered " + std::to_string(result.status));
}

}  // namespace thimble::proxy
