#include "proxy/http_source.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <thread>

#include "proxy/access_log.h"
#include "proxy/header_policy.h"

namespace thimble::proxy {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The calling thread's curl handle: reused, so connections to an origin stay alive.
CURL* thread_handle() {
  struct Handle {
    CURL* curl = curl_easy_init();
    ~Handle() { curl_easy_cleanup(curl); }
  };
  thread_local Handle handle;
  return handle.curl;
}

std::string lower(std::string_view s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view bytes) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = buffer << 8 | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kBase64Url[(buffer >> bits) & 63];
    }
  }
  if (bits > 0) out += kBase64Url[(buffer << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> unbase64url(std::string_view text) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    const char* at = std::strchr(kBase64Url, c);
    if (c == '\0' || at == nullptr) return std::nullopt;
    buffer = buffer << 6 | static_cast<unsigned>(at - kBase64Url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

// What one transfer saw; filled by curl's callbacks.
struct Transfer {
  const AddressPolicy* addresses = nullptr;
  std::uint64_t max_bytes = 0;
  bool blocked_address = false;
  bool too_large = false;
  std::string body;
  std::string etag;
  std::string last_modified;
};

curl_socket_t open_checked_socket(void* user, curlsocktype, curl_sockaddr* address) {
  auto* transfer = static_cast<Transfer*>(user);
  if (!transfer->addresses->permits(&address->addr)) {
    transfer->blocked_address = true;
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype, address->protocol);
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (transfer->body.size() + n > transfer->max_bytes) {
    transfer->too_large = true;
    return 0;  // aborts the transfer
  }
  transfer->body.append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {  // a new response (after a 1xx): forget the previous headers
    transfer->etag.clear();
    transfer->last_modified.clear();
  }
  const std::size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name = lower(line.substr(0, colon));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() &&
           (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    if (name == "etag") transfer->etag = std::string(value);
    if (name == "last-modified") transfer->last_modified = std::string(value);
  }
  return n;
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

std::string token_from_etag(std::string_view etag) {
  return "e" + base64url(etag);
}

std::string token_from_time(std::chrono::system_clock::time_point t) {
  return "t" + std::to_string(
                   std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

HttpSource::HttpSource(HttpSourceOptions options)
    : options_(std::move(options)), addresses_(options_.allowed_networks) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

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
  Result<std::string> first_url = url_for(key);
  if (!first_url.ok()) return first_url.status();

  // A validator token we issued turns back into a conditional request.
  std::string if_none_match, if_modified_since;
  for (const std::string& token : conditions.if_token_in) {
    if (token.starts_with("e")) {
      if (auto etag = unbase64url(std::string_view(token).substr(1))) if_none_match = *etag;
    } else if (token.starts_with("t") && token.size() > 1) {
      try {
        if_modified_since = http_date(std::chrono::system_clock::time_point(
            std::chrono::seconds(std::stoll(token.substr(1)))));
      } catch (const std::exception&) {
      }
    }
  }
  if (if_none_match.empty() && if_modified_since.empty() && conditions.if_modified_since) {
    if_modified_since = http_date(*conditions.if_modified_since);
  }

  const auto deadline = SteadyClock::now() + options_.timeout;
  std::string url = *first_url;
  CURL* curl = thread_handle();
  for (int hop = 0; hop <= options_.max_redirects; ++hop) {
    Transfer transfer;
    long status = 0;
    CURLcode code = CURLE_OK;
    for (int attempt = 0;; ++attempt) {
      transfer = Transfer{};
      transfer.addresses = &addresses_;
      transfer.max_bytes = options_.max_bytes;
      curl_easy_reset(curl);
      curl_slist* headers = nullptr;
      if (!if_none_match.empty()) {
        headers = curl_slist_append(headers, ("If-None-Match: " + if_none_match).c_str());
      }
      if (!if_modified_since.empty()) {
        headers = curl_slist_append(headers, ("If-Modified-Since: " + if_modified_since).c_str());
      }
      const auto remaining =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (remaining.count() <= 0)
        return Status(Code::kUpstreamTimeout, "the source did not answer in time");
      curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
      curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<long>(std::min(options_.connect_timeout, remaining).count()));
      curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
      curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, &open_checked_socket);
      curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &transfer);
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_body);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
      curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &on_header);
      curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
      code = curl_easy_perform(curl);
      curl_slist_free_all(headers);
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      const bool transient = (code == CURLE_OK && status >= 500) || code == CURLE_RECV_ERROR ||
                             code == CURLE_SEND_ERROR || code == CURLE_GOT_NOTHING ||
                             code == CURLE_PARTIAL_FILE;
      if (!transient || attempt >= options_.retries) break;
      const auto backoff = std::chrono::milliseconds(50 << attempt);
      if (SteadyClock::now() + backoff >= deadline) break;
      std::this_thread::sleep_for(backoff);
    }

    // A refused address only decides the answer when no other address of the host connected.
    if (transfer.blocked_address && code == CURLE_COULDNT_CONNECT) {
      return Status(Code::kSourceForbidden,
                    "the image host resolves to an address that is not allowed");
    }
    if (transfer.too_large) {
      return Status(Code::kTooLarge, "the source is larger than the limit of " +
                                         std::to_string(options_.max_bytes) + " bytes");
    }
    switch (code) {
      case CURLE_OK: break;
      case CURLE_OPERATION_TIMEDOUT:
        return Status(Code::kUpstreamTimeout, "the source did not answer in time");
      case CURLE_COULDNT_RESOLVE_HOST:
        return Status(Code::kUpstreamError, "the source host cannot be resolved");
      case CURLE_COULDNT_CONNECT:
        return Status(Code::kUpstreamError, "the source refused the connection");
      default:
        return Status(Code::kUpstreamError,
                      std::string("the source failed: ") + curl_easy_strerror(code));
    }
    if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
      char* location = nullptr;
      curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location);
      if (location == nullptr) return Status(Code::kUpstreamError, "the source redirected nowhere");
      url = location;
      if (Status allowed = check_url(url); !allowed.ok()) {
        return Status(allowed.code(), "the source redirected to a URL that is not allowed");
      }
      continue;
    }
    SourceObject object;
    if (!transfer.etag.empty()) {
      object.validators.token = token_from_etag(transfer.etag);
    }
    if (auto modified = parse_http_date(transfer.last_modified)) {
      object.validators.last_modified = *modified;
      if (object.validators.token.empty()) object.validators.token = token_from_time(*modified);
    }
    if (status == 304) {
      if (object.validators.token.empty()) {
        object.validators.token = !if_none_match.empty() ? token_from_etag(if_none_match) : "";
      }
      object.not_modified = true;
      return object;
    }
    if (status == 404 || status == 410) return Status(Code::kNotFound, "source not found");
    if (status != 200) {
      if (status < 500)
        log_line("warning", "source answered " + std::to_string(status) + " for " + url);
      return Status(Code::kUpstreamError, "the source answered " + std::to_string(status));
    }
    if (object.validators.token.empty()) {
      // No validator from the origin: the content itself identifies the version.
      object.validators.token = "c" + transform_hash(transfer.body);
    }
    object.bytes = std::move(transfer.body);
    return object;
  }
  return Status(Code::kUpstreamError, "the source redirected too many times");
}

}  // namespace thimble::proxy
