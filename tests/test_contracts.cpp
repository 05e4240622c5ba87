// One contract for every Source and one for every ResultStore, each run against its real server:
// the file source on a folder, the HTTP source against nginx serving a folder, the S3 source and
// the S3 result store against an S3 server (moto_server or s3rver), the directory store on a
// folder. Faults (a server that never answers, a port nobody listens on) are injected only where a
// source has a network.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "cache/result_store.h"
#include "http_origin.h"
#include "nginx_server.h"
#include "proxy/service/status_table.h"
#include "proxy/sources/file_source.h"
#include "proxy/sources/http_source.h"
#include "proxy/sources/s3_result_store.h"
#include "proxy/sources/s3_source.h"
#include "s3_server.h"
#include "support.h"

using namespace thimble;
using namespace thimble::proxy;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kByteLimit = 1 << 20;  // every source under test: 1 MiB

// A source under test, with how to store an original where it reads them.
struct SourceUnderTest {
  std::unique_ptr<Source> source;
  std::function<void(const std::string& key, const std::string& bytes)> put;
  std::string forbidden_key;  // a key the source must refuse without fetching (403)
  // The same source configured against another endpoint, for fault injection; null for sources
  // without a network.
  std::function<std::unique_ptr<Source>(const std::string& endpoint)> elsewhere;
  bool listable = true;  // list_keys() works (the HTTP source has no listing)
};

Code code_of(const Result<SourceObject>& fetched) {
  return fetched.ok() ? Code::kOk : fetched.status().code();
}

FetchConditions within(std::chrono::milliseconds budget) {
  static const SystemClock clock;
  FetchConditions conditions;
  conditions.deadline = Deadline::after(clock, budget);
  return conditions;
}

// The behaviours every source has, whatever stores its originals.
void check_source_contract(SourceUnderTest& under_test) {
  Source& source = *under_test.source;
  const std::string photo = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  REQUIRE(photo.size() < kByteLimit);
  under_test.put("photos/storm.jpg", photo);
  under_test.put("photos/a b+c.jpg", photo);
  under_test.put("photos/huge.jpg", std::string(kByteLimit + 1, 'x'));

  // Found: the bytes and a validator.
  Result<SourceObject> found = source.fetch("photos/storm.jpg", within(5s));
  REQUIRE(found.ok());
  CHECK_FALSE(found->not_modified);
  CHECK(found->bytes == photo);
  CHECK_FALSE(found->validators.token.empty());
  REQUIRE(found->validators.last_modified.has_value());
  CHECK(source.fetch("photos/a%20b%2Bc.jpg", within(5s)).ok());  // percent-encoded key

  // Not found, and a forbidden key.
  CHECK(code_of(source.fetch("photos/missing.jpg", within(5s))) == Code::kNotFound);
  CHECK(code_of(source.fetch(under_test.forbidden_key, within(5s))) == Code::kSourceForbidden);

  // Conditional: the validator token the source gave, and Last-Modified; others get the bytes.
  FetchConditions by_token = within(5s);
  by_token.if_token_in = {"elsewhere", found->validators.token};
  Result<SourceObject> unchanged = source.fetch("photos/storm.jpg", by_token);
  REQUIRE(unchanged.ok());
  CHECK(unchanged->not_modified);
  CHECK(unchanged->bytes.empty());
  FetchConditions by_date = within(5s);
  by_date.if_modified_since = found->validators.last_modified;
  Result<SourceObject> not_newer = source.fetch("photos/storm.jpg", by_date);
  REQUIRE(not_newer.ok());
  CHECK(not_newer->not_modified);
  FetchConditions other = within(5s);
  other.if_token_in = {"elsewhere"};
  Result<SourceObject> changed = source.fetch("photos/storm.jpg", other);
  REQUIRE(changed.ok());
  CHECK_FALSE(changed->not_modified);
  CHECK(changed->bytes == photo);

  // Over the byte limit: 413, never the bytes.
  CHECK(code_of(source.fetch("photos/huge.jpg", within(5s))) == Code::kTooLarge);

  // A listing (thimble-warm's): every key under the prefix, as a URL carries it, each one
  // fetchable; a sources that cannot list says so.
  under_test.put("albums/cover.jpg", photo);
  std::vector<std::string> listed;
  const Status walked = source.list_keys("photos/", [&](const ListedKey& key) {
    listed.push_back(key.key);
    return true;
  });
  if (!under_test.listable) {
    CHECK_FALSE(walked.ok());
  } else {
    REQUIRE_MESSAGE(walked.ok(), walked.message());
    std::sort(listed.begin(), listed.end());
    CHECK(listed ==
          std::vector<std::string>{"photos/a%20b+c.jpg", "photos/huge.jpg", "photos/storm.jpg"});
    CHECK(source.fetch(listed.front(), within(5s)).ok());
    listed.clear();
    CHECK(source
              .list_keys("photos/a",
                         [&](const ListedKey& key) {
                           listed.push_back(key.key);
                           return true;
                         })
              .ok());
    CHECK(listed == std::vector<std::string>{"photos/a%20b+c.jpg"});
    // Stopped by the callee after the first key.
    int seen = 0;
    CHECK(source.list_keys("", [&](const ListedKey&) { return ++seen < 1; }).ok());
    CHECK(seen == 1);
  }

  if (!under_test.elsewhere) return;
  // A server that accepts and never answers: 504 at the request's deadline, not later.
  std::atomic<bool> released{false};
  test::HttpOrigin stalled([&released](int fd, const test::OriginRequest&) {
    for (int i = 0; i < 100 && !released; ++i) std::this_thread::sleep_for(20ms);
    test::HttpOrigin::respond(fd, 200, "late");
  });
  const auto started = std::chrono::steady_clock::now();
  CHECK(code_of(under_test.elsewhere(stalled.base())->fetch("photos/storm.jpg", within(400ms))) ==
        Code::kUpstreamTimeout);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  released = true;
  // Nobody listening: 502.
  const std::string closed = "http://127.0.0.1:" + std::to_string(test::free_port());
  CHECK(code_of(under_test.elsewhere(closed)->fetch("photos/storm.jpg", within(5s))) ==
        Code::kUpstreamError);
}

HttpSourceOptions http_options(const std::string& base) {
  HttpSourceOptions options;
  options.base_url = base + "/";
  options.allowed_networks = {*Network::parse("127.0.0.1/32")};
  options.timeout = 5s;
  options.connect_timeout = 500ms;
  options.retries = 0;
  options.max_bytes = kByteLimit;
  return options;
}

S3SourceOptions s3_options(const test::S3Server& server, const std::string& bucket) {
  S3SourceOptions options;
  options.endpoint = server.endpoint();
  options.path_style = true;
  options.access_key_id = server.access_key_id();
  options.secret_access_key = server.secret_access_key();
  options.bucket = bucket;
  options.timeout = 5s;
  options.connect_timeout = 500ms;
  options.retries = 0;
  options.max_bytes = kByteLimit;
  return options;
}

}  // namespace

TEST_CASE("source contract: the file source, on a folder") {
  test::TempDir dir;
  const std::filesystem::path root = dir.path() / "originals";
  std::filesystem::create_directories(root);
  test::write_file(dir.path() / "secret.jpg", "outside the root");
  SourceUnderTest under_test{std::make_unique<FileSource>(root.string(), kByteLimit),
                             [&](const std::string& key, const std::string& bytes) {
                               std::filesystem::create_directories((root / key).parent_path());
                               test::write_file(root / key, bytes);
                             },
                             "photos/../../secret.jpg", nullptr};
  check_source_contract(under_test);
}

TEST_CASE("source contract: the HTTP source, against nginx serving a folder") {
  test::TempDir dir;
  const std::filesystem::path root = dir.path() / "www";
  std::filesystem::create_directories(root);
  test::Nginx nginx(test::nginx_static_files(root.string()));
  SourceUnderTest under_test{std::make_unique<HttpSource>(http_options(nginx.base())),
                             [&](const std::string& key, const std::string& bytes) {
                               std::filesystem::create_directories((root / key).parent_path());
                               test::write_file(root / key, bytes);
                             },
                             "photos/../secret.jpg",
                             [](const std::string& endpoint) {
                               return std::make_unique<HttpSource>(http_options(endpoint));
                             },
                             /*listable=*/false};
  check_source_contract(under_test);
}

TEST_CASE("source contract: the S3 source, against an S3 server") {
  test::S3Server s3;
  s3.create_bucket("originals");
  S3SourceOptions options = s3_options(s3, "originals");
  options.allowed_key_prefixes = {"photos/"};
  options.list_page_size = 2;  // the listing takes several pages
  SourceUnderTest under_test{std::make_unique<S3Source>(options),
                             [&](const std::string& key, const std::string& bytes) {
                               std::string encoded = key;
                               if (std::size_t at = encoded.find(' '); at != std::string::npos) {
                                 encoded = key.substr(0, at) + "%20" + key.substr(at + 1);
                               }
                               if (std::size_t at = encoded.find('+'); at != std::string::npos) {
                                 encoded = encoded.substr(0, at) + "%2B" + encoded.substr(at + 1);
                               }
                               s3.put("originals", encoded, bytes);
                             },
                             "private/storm.jpg",
                             [options](const std::string& endpoint) {
                               S3SourceOptions moved = options;
                               moved.endpoint = endpoint;
                               return std::make_unique<S3Source>(moved);
                             }};
  check_source_contract(under_test);
}

namespace {

// The behaviours every result store has. `clock` is the store's: shifting it ages what it holds.
void check_store_contract(cache::ResultStore& store, test::ShiftedClock& clock,
                          std::chrono::seconds ttl) {
  cache::CachedResult value;
  value.body = test::read_file(test::corpus("exif/Landscape_1.jpg"));
  value.content_type = "image/jpeg";
  value.etag = "\"0123456789abcdef-e1\"";
  value.last_modified = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  value.vary_accept = true;
  value.url_max_age = 300;
  const std::string key = "fit-in/300x200/filters:quality(80)/photos/a b.jpg";

  const std::string image = "photos/a b.jpg";
  // A miss, then what was written, with every header the answer needs.
  CHECK(store.read(key) == nullptr);
  store.write(key, image, value);
  std::shared_ptr<const cache::CachedResult> back = store.read(key);
  REQUIRE(back != nullptr);
  CHECK(back->body == value.body);
  CHECK(back->content_type == value.content_type);
  CHECK(back->etag == value.etag);
  CHECK(back->last_modified == value.last_modified);
  CHECK(back->vary_accept);
  CHECK(back->url_max_age == 300);
  // Stamped with when it was written: what result_storage.revalidate_s is measured from.
  CHECK(back->checked_at > clock.wall_now() - 60s);
  CHECK(back->checked_at < clock.wall_now() + 60s);

  // Written again, it is replaced as a whole; a result without the optional headers has none.
  cache::CachedResult newer;
  newer.body = "PNGDATA";
  newer.content_type = "image/png";
  newer.etag = "\"fedcba9876543210-e2\"";
  store.write(key, image, newer);
  back = store.read(key);
  REQUIRE(back != nullptr);
  CHECK(back->body == "PNGDATA");
  CHECK(back->content_type == "image/png");
  CHECK(back->etag == newer.etag);
  CHECK_FALSE(back->last_modified.has_value());
  CHECK_FALSE(back->vary_accept);
  CHECK_FALSE(back->url_max_age.has_value());
  CHECK(store.read("fit-in/300x200/filters:quality(80)/photos/other.jpg") == nullptr);

  // Older than the TTL: a miss.
  clock.shift = ttl + 60s;
  CHECK(store.read(key) == nullptr);
  clock.shift = 0s;
  CHECK(store.read(key) != nullptr);

  // A purge removes every variant of one original, and only those: the others of the folder, one
  // whose key extends this one's and the same options of another image stay.
  const std::string webp = "fit-in/300x200/filters:quality(80)/photos/a b.jpg.webp";
  const std::string small = "100x100/photos/a b.jpg";
  const std::string longer = "50x50/photos/a b.jpg/inside.jpg";
  const std::string other = "fit-in/300x200/filters:quality(80)/photos/other.jpg";
  const std::string elsewhere = "100x100/albums/x.jpg";
  store.write(webp, image, newer);
  store.write(small, image, newer);
  store.write(longer, "photos/a b.jpg/inside.jpg", newer);
  store.write(other, "photos/other.jpg", newer);
  store.write(elsewhere, "albums/x.jpg", newer);
  cache::PurgeCounts purged = store.purge(image, false);
  CHECK(purged.originals == 1);
  CHECK(purged.variants == 3);
  CHECK(purged.failed == 0);
  for (const std::string& gone : {key, webp, small}) CHECK(store.read(gone) == nullptr);
  for (const std::string& kept : {longer, other, elsewhere}) CHECK(store.read(kept) != nullptr);
  CHECK(store.purge(image, false).variants == 0);  // nothing left: nothing to do

  // By prefix: every original under it (a partial last segment matches), nothing else.
  purged = store.purge("photos/oth", true);
  CHECK(purged.originals == 1);
  CHECK(purged.variants == 1);
  CHECK(store.read(other) == nullptr);
  CHECK(store.read(longer) != nullptr);
  purged = store.purge("photos/", true);
  CHECK(purged.variants == 1);
  CHECK(store.read(longer) == nullptr);
  CHECK(store.read(elsewhere) != nullptr);
  // A result written again after a purge is indexed again.
  store.write(key, image, newer);
  CHECK(store.purge("", true).variants == 2);
  CHECK(store.read(elsewhere) == nullptr);
}

}  // namespace

TEST_CASE("result store contract: the directory store") {
  test::TempDir dir;
  test::ShiftedClock clock;
  cache::DirectoryStore store((dir.path() / "results").string(), 1h, clock);
  check_store_contract(store, clock, 1h);
}

TEST_CASE("result store contract: the S3 result store, against an S3 server") {
  test::S3Server s3;
  s3.create_bucket("results");
  S3SourceOptions options = s3_options(s3, "results");
  options.key_prefix = "thumbnails/";
  options.max_bytes = 64 << 20;
  test::ShiftedClock clock;
  S3ResultStore store(options, 1h, clock);
  check_store_contract(store, clock, 1h);
}
