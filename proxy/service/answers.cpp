#include "proxy/service/answers.h"

#include <algorithm>
#include <cctype>

#include "proxy/common/header_policy.h"
#include "proxy/service/status_table.h"

namespace thimble::proxy {
namespace {

constexpr std::size_t kMaxErrorMessage = 200;

std::shared_ptr<const std::string> text_body(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

void add_validators(OriginResponse& response, const std::string& etag,
                    const std::optional<std::chrono::system_clock::time_point>& last_modified,
                    bool vary_accept, std::optional<int> url_max_age,
                    const conf::CacheControlConfig& cache_control,
                    std::chrono::system_clock::time_point now) {
  const int max_age = max_age_for(cache_control, url_max_age);
  response.headers.emplace_back("Cache-Control",
                                cache_control_for_success(cache_control, url_max_age));
  response.headers.emplace_back("Expires", http_date(now + std::chrono::seconds(max_age)));
  response.headers.emplace_back("ETag", etag);
  if (last_modified) response.headers.emplace_back("Last-Modified", http_date(*last_modified));
  if (vary_accept) response.headers.emplace_back("Vary", "Accept");
}

}  // namespace

std::string_view OriginRequest::header(std::string_view lower_case_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_case_name) return value;
  }
  return {};
}

const std::string* OriginResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (same_name(key, name)) return &value;
  }
  return nullptr;
}

OriginResponse error_answer(const Status& status, Route route,
                            const conf::CacheControlConfig& cache_control) {
  const CodeInfo info = code_info(status.code());
  OriginResponse response;
  response.route = route;
  response.status = info.http_status;
  // Messages may quote the URL; a hostile one is not echoed back at length.
  std::string message = status.message();
  if (message.size() > kMaxErrorMessage)
    message.replace(kMaxErrorMessage - 3, std::string::npos, "...");
  response.error = message;
  response.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  if (info.caching == ErrorCaching::kShort) {
    response.headers.emplace_back("Cache-Control",
                                  "public, max-age=" + std::to_string(cache_control.error_max_age));
  } else {
    response.headers.emplace_back("Cache-Control", "no-store");
  }
  if (status.code() == Code::kOverloaded) response.headers.emplace_back("Retry-After", "1");
  if (status.code() == Code::kMethodNotAllowed) response.headers.emplace_back("Allow", "GET, HEAD");
  response.body = text_body(std::to_string(info.http_status) + " " + std::string(info.reason) +
                            ": " + message + "\n");
  return response;
}

OriginResponse result_answer(std::shared_ptr<const cache::CachedResult> result,
                             const Conditions& conditions,
                             const conf::CacheControlConfig& cache_control,
                             std::chrono::system_clock::time_point now) {
  bool not_modified = false;
  if (!conditions.if_none_match.empty()) {
    not_modified = if_none_match_matches(conditions.if_none_match, result->etag);
  } else if (auto since = parse_http_date(conditions.if_modified_since);
             since && result->last_modified) {
    not_modified = *result->last_modified <= *since;
  }
  OriginResponse response;
  response.status = not_modified ? 304 : 200;
  add_validators(response, result->etag, result->last_modified, result->vary_accept,
                 result->url_max_age, cache_control, now);
  if (!not_modified) {
    response.headers.emplace_back("Content-Type", result->content_type);
    // Shares the cached bytes: no copy per hit.
    response.body = std::shared_ptr<const std::string>(result, &result->body);
  }
  return response;
}

OriginResponse not_modified_answer(
    const std::string& etag,
    const std::optional<std::chrono::system_clock::time_point>& last_modified, bool vary_accept,
    std::optional<int> url_max_age, const conf::CacheControlConfig& cache_control,
    std::chrono::system_clock::time_point now) {
  OriginResponse response;
  response.status = 304;
  add_validators(response, etag, last_modified, vary_accept, url_max_age, cache_control, now);
  return response;
}

OriginResponse uncached_text_answer(int status, Route route, std::string content_type,
                                    std::string text) {
  OriginResponse response;
  response.status = status;
  response.route = route;
  response.headers = {{"Content-Type", std::move(content_type)}, {"Cache-Control", "no-store"}};
  response.body = text_body(std::move(text));
  return response;
}

}  // namespace thimble::proxy
