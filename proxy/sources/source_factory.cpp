#include "proxy/sources/source_factory.h"

#include "proxy/sources/file_source.h"
#include "proxy/sources/http_source.h"
#include "proxy/sources/s3_result_store.h"
#include "proxy/sources/s3_source.h"

namespace thimble::proxy {

Result<std::unique_ptr<Source>> make_source(const conf::Config& config) {
  if (config.source.type == "http") {
    const conf::HttpSourceConfig& c = config.source.http;
    HttpSourceOptions options;
    options.base_url = c.base_url;
    options.allowed_hosts = c.allowed_hosts;
    options.default_scheme = c.default_scheme;
    for (const std::string& cidr : c.allow_private_networks) {
      std::optional<Network> network = Network::parse(cidr);
      if (!network) {
        return Status(Code::kBadRequest, "source.http.allow_private_networks: '" + cidr +
                                             "' is not an address or network (CIDR)");
      }
      options.allowed_networks.push_back(*network);
    }
    options.connect_timeout = std::chrono::milliseconds(c.connect_timeout_ms);
    options.timeout = std::chrono::milliseconds(c.timeout_ms);
    options.max_redirects = c.max_redirects;
    options.retries = c.retries;
    options.max_bytes = config.limits.max_source_bytes;
    options.user_agent = c.user_agent;
    return std::unique_ptr<Source>(std::make_unique<HttpSource>(std::move(options)));
  }
  if (config.source.type == "s3") {
    const conf::S3SourceConfig& c = config.source.s3;
    S3SourceOptions options;
    options.endpoint = c.endpoint;
    options.region = c.region;
    options.path_style = c.addressing == "path";
    options.access_key_id = c.access_key_id;
    options.secret_access_key = c.secret_access_key;
    options.session_token = c.session_token;
    options.bucket = c.bucket;
    options.key_prefix = c.key_prefix;
    for (const std::string& name : c.allowed_buckets) options.buckets[name] = {name, "", ""};
    for (const auto& [name, bucket] : c.buckets) {
      options.buckets[name] = {bucket.bucket.empty() ? name : bucket.bucket, bucket.key_prefix,
                               bucket.region};
    }
    options.allowed_key_prefixes = c.allowed_key_prefixes;
    options.access_denied_as_not_found = c.access_denied_as == "404";
    options.connect_timeout = std::chrono::milliseconds(c.connect_timeout_ms);
    options.timeout = std::chrono::milliseconds(c.timeout_ms);
    options.retries = c.retries;
    options.max_bytes = config.limits.max_source_bytes;
    return std::unique_ptr<Source>(std::make_unique<S3Source>(std::move(options)));
  }
  return std::unique_ptr<Source>(
      std::make_unique<FileSource>(config.source.file.root, config.limits.max_source_bytes));
}

std::unique_ptr<cache::ResultStore> make_result_store(const conf::Config& config,
                                                      const Clock& clock) {
  const conf::ResultStorageConfig& c = config.result_storage;
  const std::chrono::seconds ttl(c.ttl_s);
  if (c.type == "directory")
    return std::make_unique<cache::DirectoryStore>(c.directory, ttl, clock);
  if (c.type == "s3") {
    S3SourceOptions options;
    options.bucket = c.s3.bucket;
    options.key_prefix = c.s3.prefix;
    options.endpoint = c.s3.endpoint;
    options.region = c.s3.region;
    options.path_style = c.s3.addressing == "path";
    options.access_key_id = c.s3.access_key_id;
    options.secret_access_key = c.s3.secret_access_key;
    options.max_bytes = 64ull << 20;
    return std::make_unique<S3ResultStore>(std::move(options), ttl, clock);
  }
  return nullptr;
}

}  // namespace thimble::proxy
