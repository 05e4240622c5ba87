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
  const auto stored = parse_http_date(result.last_modified);
  if (stored && clock_.wall_now() - *stored > ttl_) return nullptr;
  auto cached = std::make_shared<cache::CachedResult>();
  cached->body = std::move(result.body);
  cached->checked_at = stored.value_or(std::chrono::system_clock::time_point{});
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

bool S3ResultStore::put(const std::string& key, std::string body,
                        const std::vector<std::string>& headers) {
  TransferRequest request = request_for(key);
  request.method = "PUT";
  request.body = std::move(body);
  for (const std::string& header : headers) request.headers.push_back(header);
  TransferResult done = perform(request);
  if (done.code != CURLE_OK || done.status != 200) {
    log_line("warning",
             "result storage write failed (" + std::to_string(done.status) + ") for " + key);
    return false;
  }
  return true;
}

bool S3ResultStore::remove(const std::string& key) {
  TransferRequest request = request_for(key);
  request.method = "DELETE";
  TransferResult done = perform(request);
  // S3 answers 204 whether or not the object existed.
  if (done.code != CURLE_OK || (done.status != 204 && done.status != 200 && done.status != 404)) {
    log_line("warning",
             "result storage delete failed (" + std::to_string(done.status) + ") for " + key);
    return false;
  }
  return true;
}

void S3ResultStore::write(const std::string& key, const std::string& image,
                          const cache::CachedResult& result) {
  const std::string entry = cache::variant_entry(image, key);
  if (entry.empty()) return;
  // The index entry first: a stored result is always one a purge finds.
  if (!put(entry, key, {"Content-Type: text/plain"})) return;
  std::vector<std::string> headers = {"Content-Type: " + result.content_type};
  for (const auto& [name, value] : cache::stored_headers(result)) {
    headers.push_back("x-amz-meta-thimble-" + name + ": " + value);
  }
  put(key, result.body, headers);
}

cache::PurgeCounts S3ResultStore::purge(const std::string& image, bool prefix,
                                        const Removed& removed) {
  cache::PurgeCounts counts;
  const std::string folder =
      prefix ? std::string(cache::kVariantIndex) + image : cache::variant_folder(image);
  if (folder.empty()) return counts;
  std::string last_folder;
  // Removed page by page as the listing streams: no listing is held whole.
  Status listed = objects_.list(
      {options_.bucket, options_.key_prefix + folder, ""}, !prefix,
      [&](const S3Source::Listed& object) {
        if (object.size > 8192) return true;  // no index entry
        const std::string entry = object.key.substr(options_.key_prefix.size());
        const std::size_t slash = entry.rfind('/');
        const std::string entry_folder = entry.substr(0, slash + 1);
        TransferRequest get = request_for(entry);
        get.max_bytes = 8192;
        TransferResult read = perform(get);
        if (read.code != CURLE_OK || read.status != 200) {
          ++counts.failed;
          return true;
        }
        const std::size_t index = cache::kVariantIndex.size();
        if (entry_folder.size() <= index + 1) return true;
        const std::string of = entry_folder.substr(index, entry_folder.size() - index - 1);
        if (cache::variant_entry(of, read.body) != entry) {
          return true;  // not an index entry of that key
        }
        if (entry_folder != last_folder) {
          ++counts.originals;
          last_folder = entry_folder;
        }
        if (remove(read.body) && remove(entry)) {
          ++counts.variants;
          if (removed) removed(read.body, of);
        } else {
          ++counts.failed;
        }
        return true;
      });
  if (!listed.ok()) {
    log_line("warning", "result storage purge of " + image + ": " + listed.message());
    ++counts.failed;
  }
  return counts;
}

}  // namespace thimble::proxy
