#include "proxy/s3_result_store.h"

#include "proxy/access_log.h"
#include "proxy/header_policy.h"

namespace thimble::proxy {

S3ResultStore::S3ResultStore(S3SourceOptions options, std::chrono::seconds ttl, const Clock& clock)
    : options_(std::move(options)), objects_(options_), ttl_(ttl), clock_(clock) {}

TransferRequest S3ResultStore::request_for(const std::string& key) const {
  TransferRequest request = objects_.request_for({options_.bucket, options_.key_prefix + key});
  request.deadline = std::chrono::steady_clock::now() + options_.timeout;
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
  try {
    for (const auto& [name, value] : result.amz_meta) {
      if (name == "x-amz-meta-thimble-content-type") cached->content_type = value;
      if (name == "x-amz-meta-thimble-etag") cached->etag = value;
      if (name == "x-amz-meta-thimble-last-modified") {
        cached->last_modified =
            std::chrono::system_clock::time_point(std::chrono::seconds(std::stoll(value)));
      }
      if (name == "x-amz-meta-thimble-vary-accept") cached->vary_accept = value == "1";
      if (name == "x-amz-meta-thimble-max-age") cached->url_max_age = std::stoi(value);
    }
  } catch (const std::exception&) {
    return nullptr;
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
  request.headers.push_back("x-amz-meta-thimble-content-type: " + result.content_type);
  request.headers.push_back("x-amz-meta-thimble-etag: " + result.etag);
  if (result.last_modified) {
    request.headers.push_back("x-amz-meta-thimble-last-modified: " +
                              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                 result.last_modified->time_since_epoch())
                                                 .count()));
  }
  request.headers.push_back(std::string("x-amz-meta-thimble-vary-accept: ") +
                            (result.vary_accept ? "1" : "0"));
  if (result.url_max_age) {
    request.headers.push_back("x-amz-meta-thimble-max-age: " + std::to_string(*result.url_max_age));
  }
  TransferResult done = perform(request);
  if (done.code != CURLE_OK || done.status != 200) {
    log_line("warning",
             "result storage write failed (" + std::to_string(done.status) + ") for " + key);
  }
}

}  // namespace thimble::proxy
