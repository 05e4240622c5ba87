#include "proxy/sources/curl_transfer.h"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <thread>

#include "conf/base/status.h"
#include "proxy/common/header_policy.h"

namespace thimble::proxy {
namespace {

// The calling thread's curl handle: reused, so connections stay alive between fetches.
CURL* thread_handle() {
  struct Handle {
    Handle() {
      static const bool initialised = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == 0; }();
      (void)initialised;
      curl = curl_easy_init();
    }
    ~Handle() { curl_easy_cleanup(curl); }
    CURL* curl = nullptr;
  };
  thread_local Handle handle;
  return handle.curl;
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
    const char* at = c == '\0' ? nullptr : std::strchr(kBase64Url, c);
    if (at == nullptr) return std::nullopt;
    buffer = buffer << 6 | static_cast<unsigned>(at - kBase64Url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

bool safe_header_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

struct State {
  const TransferRequest* request;
  TransferResult* result;
  bool refused_one = false;
};

curl_socket_t open_checked_socket(void* user, curlsocktype, curl_sockaddr* address) {
  auto* state = static_cast<State*>(user);
  if (state->request->addresses && !state->request->addresses->permits(&address->addr)) {
    state->refused_one = true;
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype, address->protocol);
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<State*>(user);
  const size_t n = size * count;
  if (state->result->body.size() + n > state->request->max_bytes) {
    state->result->too_large = true;
    return 0;  // aborts the transfer
  }
  state->result->body.append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* result = static_cast<State*>(user)->result;
  const size_t n = size * count;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {  // a new response (after a 1xx): forget the earlier headers
    result->etag.clear();
    result->last_modified.clear();
    result->amz_meta.clear();
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name;
  for (char c : line.substr(0, colon)) {
    name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  if (name == "etag") result->etag = std::string(value);
  if (name.starts_with("x-amz-meta-")) result->amz_meta.emplace_back(name, std::string(value));
  if (name == "last-modified") result->last_modified = std::string(value);
  return n;
}

}  // namespace

TransferResult perform(const TransferRequest& request) {
  CURL* curl = thread_handle();
  TransferResult result;
  // No byte of a request Thimble sends may end a header line or the request line.
  bool safe = safe_header_value(request.url) && safe_header_value(request.user_agent);
  for (const std::string& h : request.headers) safe = safe && safe_header_value(h);
  if (!safe) {
    result.code = CURLE_BAD_FUNCTION_ARGUMENT;
    result.unsafe_request = true;
    return result;
  }
  for (int attempt = 0;; ++attempt) {
    result = TransferResult{};
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(request.deadline.remaining());
    if (remaining.count() <= 0) {
      result.code = CURLE_OPERATION_TIMEDOUT;
      result.timed_out = true;
      return result;
    }
    State state{&request, &result};
    curl_easy_reset(curl);
    curl_slist* headers = nullptr;
    for (const std::string& h : request.headers) headers = curl_slist_append(headers, h.c_str());
    curl_slist* connect_to = nullptr;
    if (!request.connect_to.empty())
      connect_to = curl_slist_append(nullptr, request.connect_to.c_str());
    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    if (request.method == "PUT") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    } else if (request.method == "DELETE") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(request.connect_timeout, remaining).count()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
    curl_easy_setopt(curl, CURLOPT_USERAGENT, request.user_agent.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CONNECT_TO, connect_to);
    if (!request.aws_sigv4.empty()) {
      curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, request.aws_sigv4.c_str());
      curl_easy_setopt(curl, CURLOPT_USERPWD, request.credentials.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, &open_checked_socket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &state);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &state);
    result.code = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_slist_free_all(connect_to);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
    char* location = nullptr;
    if (curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location) {
      result.redirect_url = location;
    }
    // A refused address only counts when no other address of the host connected.
    result.blocked_address = state.refused_one && result.code == CURLE_COULDNT_CONNECT;
    result.timed_out = result.code == CURLE_OPERATION_TIMEDOUT;
    const bool transient = (result.code == CURLE_OK && result.status >= 500) ||
                           result.code == CURLE_RECV_ERROR || result.code == CURLE_SEND_ERROR ||
                           result.code == CURLE_GOT_NOTHING || result.code == CURLE_PARTIAL_FILE;
    if (!transient || attempt >= request.retries) return result;
    const auto backoff = std::chrono::milliseconds(50 << attempt);
    if (backoff >= request.deadline.remaining()) return result;
    std::this_thread::sleep_for(backoff);
  }
}

std::optional<Status> transport_failure(const TransferResult& result, std::uint64_t max_bytes) {
  if (result.blocked_address) {
    return Status(Code::kSourceForbidden,
                  "the image host resolves to an address that is not allowed");
  }
  if (result.too_large) {
    return Status(Code::kTooLarge,
                  "the source is larger than the limit of " + std::to_string(max_bytes) + " bytes");
  }
  if (result.unsafe_request) {
    return Status(Code::kBadRequest, "the image key makes a request with a line break in it");
  }
  switch (result.code) {
    case CURLE_OK: return std::nullopt;
    case CURLE_OPERATION_TIMEDOUT:
      return Status(Code::kUpstreamTimeout, "the source did not answer in time");
    case CURLE_COULDNT_RESOLVE_HOST:
      return Status(Code::kUpstreamError, "the source host cannot be resolved");
    case CURLE_COULDNT_CONNECT:
      return Status(Code::kUpstreamError, "the source refused the connection");
    default:
      return Status(Code::kUpstreamError,
                    std::string("the source failed: ") + curl_easy_strerror(result.code));
  }
}

std::string token_from_etag(std::string_view etag) {
  return "e" + base64url(etag);
}

std::string token_from_time(std::chrono::system_clock::time_point t) {
  return "t" + std::to_string(
                   std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

bool is_entity_tag(std::string_view text) {
  if (text.starts_with("W/")) text.remove_prefix(2);
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return false;
  // etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3)
  return std::all_of(text.begin() + 1, text.end() - 1, [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte == 0x21 || (byte >= 0x23 && byte != 0x7f);
  });
}

std::vector<std::string> conditional_headers(const FetchConditions& conditions) {
  std::vector<std::string> headers;
  for (const std::string& token : conditions.if_token_in) {
    if (token.starts_with("e")) {
      // Only a well-formed entity-tag is sent back; the token came from an ETag Thimble issued
      // (EntityTags), and is checked once more here because its bytes become a request header.
      if (auto etag = unbase64url(std::string_view(token).substr(1));
          etag && is_entity_tag(*etag)) {
        headers.push_back("If-None-Match: " + *etag);
        return headers;
      }
    } else if (token.size() > 1 && token.starts_with("t") &&
               token.find_first_not_of("0123456789", 1) == std::string::npos && token.size() < 15) {
      headers.push_back("If-Modified-Since: " +
                        http_date(std::chrono::system_clock::time_point(
                            std::chrono::seconds(std::stoll(token.substr(1))))));
      return headers;
    }
  }
  if (conditions.if_modified_since) {
    headers.push_back("If-Modified-Since: " + http_date(*conditions.if_modified_since));
  }
  return headers;
}

SourceObject object_from(TransferResult&& result, const FetchConditions& conditions) {
  SourceObject object;
  // An origin's ETag that is no entity-tag is not kept: it could never be sent back.
  if (is_entity_tag(result.etag)) object.validators.token = token_from_etag(result.etag);
  if (auto modified = parse_http_date(result.last_modified)) {
    object.validators.last_modified = *modified;
    if (object.validators.token.empty()) object.validators.token = token_from_time(*modified);
  }
  if (result.status == 304) {
    object.not_modified = true;
    // An origin may omit validators on a 304: the token that matched is still the current one.
    if (object.validators.token.empty() && !conditions.if_token_in.empty()) {
      object.validators.token = conditions.if_token_in.front();
    }
    return object;
  }
  if (object.validators.token.empty()) {
    object.validators.token = "c" + transform_hash(result.body);  // the content names the version
  }
  object.bytes = std::move(result.body);
  return object;
}
}  // namespace thimble::proxy
