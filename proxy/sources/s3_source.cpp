#include "proxy/sources/s3_source.h"

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "conf/base/clock.h"
#include "proxy/common/access_log.h"
#include "proxy/sources/s3_listing.h"

namespace thimble::proxy {
namespace {

// The <Code> of an S3 XML error body, e.g. "NoSuchKey".
std::string s3_error_code(const std::string& body) {
  const std::size_t open = body.find("<Code>");
  const std::size_t close = body.find("</Code>");
  if (open == std::string::npos || close == std::string::npos || close < open) return {};
  return body.substr(open + 6, close - open - 6);
}

// Query values the way SigV4 canonicalises them: every byte but unreserved ones encoded.
std::string aws_encode_value(std::string_view value) {
  return percent_encode(value, "-._~");
}

}  // namespace

std::string aws_encode_key(std::string_view key) {
  return percent_encode(key, "-._~/");
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

TransferRequest S3Source::request_for(const Location& location, std::string_view query) const {
  const std::string& region = location.region.empty() ? options_.region : location.region;
  const std::string endpoint =
      options_.endpoint.empty() ? "https://s3." + region + ".amazonaws.com" : options_.endpoint;
  const std::size_t scheme_end = endpoint.find("://");
  const std::string scheme = endpoint.substr(0, scheme_end + 3);
  const std::string host = endpoint.substr(scheme_end + 3);
  TransferRequest request;
  const std::string bucket_url = options_.path_style ? endpoint + "/" + location.bucket
                                                     : scheme + location.bucket + "." + host;
  request.url = query.empty() ? bucket_url + "/" + aws_encode_key(location.object)
                              : bucket_url + "/?" + std::string(query);
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

Status S3Source::list(const Location& where, bool direct,
                      const std::function<bool(const Listed&)>& each) const {
  std::string continuation;
  for (int page = 0;; ++page) {
    // Parameters in canonical (sorted) order: curl signs the query as given.
    std::string query;
    if (!continuation.empty())
      query += "continuation-token=" + aws_encode_value(continuation) + "&";
    if (direct) query += "delimiter=%2F&";
    query += "list-type=2&max-keys=" + std::to_string(options_.list_page_size);
    if (!where.object.empty()) query += "&prefix=" + aws_encode_value(where.object);
    TransferRequest request = request_for(where, query);
    request.max_bytes = 16 << 20;  // a page of 1000 keys is well under 1 MB
    static const SystemClock clock;
    request.deadline = Deadline::after(clock, options_.timeout);
    TransferResult result = perform(request);
    if (std::optional<Status> failed = transport_failure(result, request.max_bytes)) return *failed;
    if (result.status != 200) {
      const std::string code = s3_error_code(result.body);
      if (result.status == 404) return Status(Code::kNotFound, "no bucket " + where.bucket);
      if (result.status == 403) {
        return Status(Code::kSourceForbidden, "listing " + where.bucket + " is not allowed (" +
                                                  code + "): it needs s3:ListBucket");
      }
      return Status(Code::kUpstreamError, "listing " + where.bucket + ": the store answered " +
                                              std::to_string(result.status) + " " + code);
    }
    std::optional<ListingPage> parsed = parse_listing_page(result.body);
    if (!parsed) {
      return Status(Code::kUpstreamError, "a listing of " + where.bucket + " is damaged");
    }
    for (const ListedObject& object : parsed->objects) {
      if (!each({object.key, object.size})) return Status::Ok();
    }
    if (!parsed->truncated) return Status::Ok();
    const std::optional<std::string>& next = parsed->next;
    if (!next || next->empty() || page > 10'000'000) {
      return Status(Code::kUpstreamError, "a listing of " + where.bucket + " has no next page");
    }
    if (*next == continuation) {
      return Status(Code::kUpstreamError, "a listing of " + where.bucket + " repeats its page");
    }
    continuation = *next;
  }
}

Status S3Source::list_keys(std::string_view prefix,
                           const std::function<bool(const ListedKey&)>& each) {
  const auto allowed = [&](const std::string& object) {
    return options_.allowed_key_prefixes.empty() ||
           std::any_of(options_.allowed_key_prefixes.begin(), options_.allowed_key_prefixes.end(),
                       [&](const std::string& p) { return object.starts_with(p); });
  };
  if (!options_.bucket.empty()) {
    Location where{options_.bucket, options_.key_prefix + std::string(prefix), ""};
    return list(where, false, [&](const Listed& listed) {
      if (!allowed(listed.key) || !listed.key.starts_with(options_.key_prefix)) return true;
      return each(ListedKey{url_encode_key(listed.key.substr(options_.key_prefix.size()))});
    });
  }
  // Named buckets: each one whose name the prefix allows, its keys under its own name.
  for (const auto& entry : options_.buckets) {
    const auto& bucket = entry.second;  // a plain reference: lambdas may not capture bindings
    const std::string named = entry.first + "/";
    if (!named.starts_with(prefix.substr(0, std::min(prefix.size(), named.size())))) continue;
    const std::string rest =
        prefix.size() > named.size() ? std::string(prefix.substr(named.size())) : std::string();
    bool stopped = false;
    Status listed = list(
        {bucket.bucket, bucket.key_prefix + rest, bucket.region}, false, [&](const Listed& object) {
          if (!allowed(object.key) || !object.key.starts_with(bucket.key_prefix)) return true;
          if (!each(
                  ListedKey{url_encode_key(named + object.key.substr(bucket.key_prefix.size()))})) {
            stopped = true;
            return false;
          }
          return true;
        });
    if (!listed.ok()) return listed;
    if (stopped) break;
  }
  return Status::Ok();
}

}  // namespace thimble::proxy
