#include "proxy/sources/s3_result_store.h"

#include "proxy/common/access_log.h"
#include "proxy/common/header_policy.h"

namespace thimble::proxy {

S3ResultStore::S3ResultStore(S3SourceOptions options, std::chrono::seconds ttl, const Clock& clock)
    : options_(std::move(options)), objects_(options_), ttl_(ttl), clock_(clock) {}

TransferRequest S3ResultStore::request_for(const std::string& key) const {
  TransferRequest request = objects_.request_for({options_.bucket, options_.key_prefix + key, ""});
  request.deadline = Deadline::after(clock_, options_.timeout);
  return request;
}

std::shared_ptr<const cache::CachedResult> S3ResultStore::read(const std::string& key) {
  if (!cache::DirectoryStore::valid_key(key)) return nullptr;
  TransferResult result = perform(request_for(key));
  if (result.code != CURLE_OK || result.too_large || result.status != 200) {
    if (result.code != CURLE_OK || (result.status != 404 && result.status != 403)) {
      log_line("warning",
               "result storage read failed (" + std::to_string(result.status) + ") for " + key);
    }
    return nullptr;
  }
  if (auto stored = parse_http_date(result.last_modified);
      stored && clock_.wall_now() - *stored > ttl_) {
    return nullptr;
  }
  auto cached = std::make_shared<cache::CachedResult>();
  cached->body = std::move(result.body);
  constexpr std::string_view kPrefix = "x-amz-meta-thimble-";
  for (const auto& [name, value] : result.amz_meta) {
    if (name.starts_with(kPrefix) &&
        !cache::read_stored_header(*cached, std::string_view(name).substr(kPrefix.size()), value)) {
      return nullptr;
    }
  }
  if (cached->content_type.empty() || cached->etag.empty()) return nullptr;
  return cached;
}

void S3ResultStore::write(const std::string& key, const cache::CachedResult& result) {
  if (!cache::DirectoryStore::valid_key(key)) return;
  TransferRequest request = request_for(key);
  request.method = "PUT";
  request.body = result.body;
  request.headers.push_back("Content-Type: " + result.content_type);
  for (const auto& [name, value] : cache::stored_headers(result)) {
    request.headers.push_back("x-amz-meta-thimble-" + name + ": " + value);
  }
  TransferResult done = perform(request);
  if (done.code != CURLE_OK || done.status != 200) {
    log_line("warning",
             "result storage write failed (" + std::to_string(done.status) + ") for " + key);
  }
}

}  // namespace thimble::proxy
