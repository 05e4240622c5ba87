#include "proxy/sources/http_source.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <thread>

#include "proxy/common/access_log.h"
#include "proxy/common/header_policy.h"
#include "proxy/sources/curl_transfer.h"

namespace thimble::proxy {
namespace {

std::string lower(std::string_view s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool matches_host(const std::string& pattern, const std::string& host, const std::string& port,
                  bool default_port) {
  std::string want_host = pattern, want_port;
  if (std::size_t colon = pattern.rfind(':');
      colon != std::string::npos && pattern.find(']') == std::string::npos) {
    want_host = pattern.substr(0, colon);
    want_port = pattern.substr(colon + 1);
  }
  if (want_port.empty() ? !default_port : want_port != port) return false;
  want_host = lower(want_host);
  if (want_host.starts_with("*.")) {
    return host.size() > want_host.size() - 1 &&
           host.compare(host.size() - (want_host.size() - 1), std::string::npos, want_host, 1) == 0;
  }
  return host == want_host;
}

// `..` or `.` as a path segment (raw or percent-encoded), or a backslash.
bool has_dot_segment(std::string_view key) {
  std::optional<std::string> decoded = percent_decode(key);
  if (!decoded) return true;
  if (decoded->find('\\') != std::string::npos) return true;
  std::size_t start = 0;
  while (start <= decoded->size()) {
    std::size_t slash = decoded->find('/', start);
    std::string_view segment = std::string_view(*decoded).substr(
        start, slash == std::string::npos ? std::string::npos : slash - start);
    if (segment == "." || segment == "..") return true;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return false;
}

}  // namespace

HttpSource::HttpSource(HttpSourceOptions options)
    : options_(std::move(options)), addresses_(options_.allowed_networks) {}

Status HttpSource::check_url(const std::string& url) const {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), &curl_url_cleanup);
  if (curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return {Code::kBadRequest, "the image URL is not valid"};
  }
  auto part = [&](CURLUPart which) -> std::string {
    char* value = nullptr;
    if (curl_url_get(parsed.get(), which, &value, 0) != CURLUE_OK || value == nullptr) return {};
    std::string out = value;
    curl_free(value);
    return out;
  };
  const std::string scheme = lower(part(CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") {
    return {Code::kSourceForbidden, "only http and https originals may be fetched"};
  }
  if (!part(CURLUPART_USER).empty() || !part(CURLUPART_PASSWORD).empty()) {
    return {Code::kSourceForbidden, "credentials in image URLs are not allowed"};
  }
  const std::string host = lower(part(CURLUPART_HOST));
  const std::string port = part(CURLUPART_PORT);
  const bool default_port =
      port.empty() || (scheme == "http" && port == "80") || (scheme == "https" && port == "443");
  std::vector<std::string> allowed = options_.allowed_hosts;
  if (!options_.base_url.empty()) {
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> base(curl_url(), &curl_url_cleanup);
    char* base_host = nullptr;
    char* base_port = nullptr;
    curl_url_set(base.get(), CURLUPART_URL, options_.base_url.c_str(), 0);
    curl_url_get(base.get(), CURLUPART_HOST, &base_host, 0);
    if (curl_url_get(base.get(), CURLUPART_PORT, &base_port, 0) == CURLUE_OK && base_port) {
      allowed.push_back(std::string(base_host ? base_host : "") + ":" + base_port);
    } else if (base_host) {
      allowed.push_back(base_host);
    }
    curl_free(base_host);
    curl_free(base_port);
  }
  for (const std::string& pattern : allowed) {
    if (matches_host(pattern, host, port, default_port)) return Status::Ok();
  }
  return {Code::kSourceForbidden, "the image host is not allowed"};
}

Result<std::string> HttpSource::url_for(std::string_view key) const {
  std::string url;
  if (!options_.base_url.empty()) {
    if (key.empty() || key.front() == '/' || has_dot_segment(key)) {
      return Status(Code::kSourceForbidden, "the image path leaves the source's base URL");
    }
    url = options_.base_url + std::string(key);
  } else if (key.starts_with("http://") || key.starts_with("https://")) {
    url = std::string(key);
  } else {
    std::optional<std::string> decoded = percent_decode(key);
    if (decoded && (decoded->starts_with("http://") || decoded->starts_with("https://"))) {
      // `https%3A%2F%2Fhost%2Fa%20b.jpg`: decoded once, then re-encoded where needed.
      std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), &curl_url_cleanup);
      char* normalised = nullptr;
      if (curl_url_set(parsed.get(), CURLUPART_URL, decoded->c_str(), CURLU_URLENCODE) !=
              CURLUE_OK ||
          curl_url_get(parsed.get(), CURLUPART_URL, &normalised, 0) != CURLUE_OK) {
        return Status(Code::kBadRequest, "the image URL is not valid");
      }
      url = normalised;
      curl_free(normalised);
    } else {
      url = options_.default_scheme + "://" + std::string(key);  // Thumbor's scheme-less form
    }
  }
  if (Status s = check_url(url); !s.ok()) return s;
  return url;
}

Result<SourceObject> HttpSource::fetch(std::string_view key, const FetchConditions& conditions) {
  Result<std::string> url = url_for(key);
  if (!url.ok()) return url.status();
  TransferRequest request;
  request.url = *url;
  request.headers = conditional_headers(conditions);
  request.deadline = conditions.deadline.at_most(options_.timeout);
  request.connect_timeout = options_.connect_timeout;
  request.max_bytes = options_.max_bytes;
  request.retries = options_.retries;
  request.addresses = &addresses_;
  request.user_agent = options_.user_agent;
  for (int hop = 0; hop <= options_.max_redirects; ++hop) {
    TransferResult result = perform(request);
    if (std::optional<Status> failed = transport_failure(result, options_.max_bytes))
      return *failed;
    const long status = result.status;
    if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
      if (result.redirect_url.empty()) {
        return Status(Code::kUpstreamError, "the source redirected nowhere");
      }
      if (Status allowed = check_url(result.redirect_url); !allowed.ok()) {
        return Status(allowed.code(), "the source redirected to a URL that is not allowed");
      }
      request.url = result.redirect_url;
      continue;
    }
    if (status == 200 || status == 304) return object_from(std::move(result), conditions);
    if (status == 404 || status == 410) return Status(Code::kNotFound, "source not found");
    if (status < 500) {
      log_line("warning", "source answered " + std::to_string(status) + " for " + request.url);
    }
    return Status(Code::kUpstreamError, "the source answered " + std::to_string(status));
  }
  return Status(Code::kUpstreamError, "the source redirected too many times");
}

}  // namespace thimble::proxy
