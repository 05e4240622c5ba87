// proxy/S3Source: AWS Signature V4 against AWS's published example, key mapping, and a real
// S3-compatible server started by the test (tests/s3_server.h: moto_server, else s3rver).
#include <doctest/doctest.h>

#include <algorithm>
#include <mutex>

#include "cache/result_cache.h"
#include "conf/config.h"
#include "http_origin.h"
#include "proxy/service/origin_service.h"
#include "proxy/service/status_table.h"
#include "proxy/sources/s3_result_store.h"
#include "proxy/sources/s3_source.h"
#include "proxy/sources/source_factory.h"
#include "s3_server.h"
#include "service_client.h"
#include "signing/signer.h"
#include "support.h"

using namespace thimble;
using namespace thimble::proxy;
using namespace std::chrono_literals;

TEST_CASE("the signature reproduces AWS's documented GET Object example byte for byte") {
  // docs.aws.amazon.com, "Signature Calculations for the Authorization Header", GET Object.
  std::mutex mutex;
  std::string authorization;
  test::HttpOrigin listener([&](int fd, const test::OriginRequest& r) {
    std::lock_guard lock(mutex);
    authorization = r.headers.count("authorization") ? r.headers.at("authorization") : "";
    test::HttpOrigin::respond(fd, 206, "0123456789");
  });
  S3SourceOptions options;
  options.endpoint = "http://s3.amazonaws.com";
  options.region = "us-east-1";
  options.access_key_id = "AKIAIOSFODNN7EXAMPLE";
  options.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  S3Source source(options);
  TransferRequest request = source.request_for({"examplebucket", "test.txt", ""});
  CHECK(request.url == "http://examplebucket.s3.amazonaws.com/test.txt");
  // The example signs an empty payload's hash, a Range and a fixed date.
  request.headers = {
      "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "Range: bytes=0-9", "x-amz-date: 20130524T000000Z"};
  request.connect_to =
      "examplebucket.s3.amazonaws.com:80:127.0.0.1:" + std::to_string(listener.port());
  const SystemClock clock;
  request.deadline = Deadline::after(clock, 5s);
  request.max_bytes = 1024;
  TransferResult result = perform(request);
  REQUIRE(result.code == CURLE_OK);
  std::lock_guard lock(mutex);
  CHECK(authorization.find("Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request") !=
        std::string::npos);
  CHECK(authorization.find("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date") !=
        std::string::npos);
  CHECK(authorization.find(
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41") !=
        std::string::npos);
}

TEST_CASE("object keys are percent-encoded the AWS way and mapped to buckets as configured") {
  CHECK(aws_encode_key("photos/a b+c%d~e.jpg") == "photos/a%20b%2Bc%25d~e.jpg");
  CHECK(aws_encode_key("caf\xc3\xa9/\xe6\x97\xa5.png") == "caf%C3%A9/%E6%97%A5.png");
  S3SourceOptions fixed;
  fixed.bucket = "photos";
  fixed.key_prefix = "originals/";
  fixed.allowed_key_prefixes = {"originals/company_X/"};
  S3Source one(fixed);
  auto located = one.locate("company_X/plant_Y/a%20b.jpg");
  REQUIRE(located.ok());
  CHECK(located->bucket == "photos");
  CHECK(located->object == "originals/company_X/plant_Y/a b.jpg");
  CHECK(http_status(one.locate("company_Z/a.jpg").status()) == 403);
  S3SourceOptions by_path;
  by_path.buckets = {{"tenant-a", {"tenant-a", "", ""}}, {"tenant-b", {"tenant-b", "", ""}}};
  by_path.path_style = true;
  by_path.endpoint = "http://127.0.0.1:9000";
  S3Source many(by_path);
  auto b = many.locate("tenant-b/x/y.jpg");
  REQUIRE(b.ok());
  CHECK(b->bucket == "tenant-b");
  CHECK(b->object == "x/y.jpg");
  CHECK(many.request_for(*b).url == "http://127.0.0.1:9000/tenant-b/x/y.jpg");
  CHECK(http_status(many.locate("tenant-c/x.jpg").status()) == 403);
  CHECK(http_status(many.locate("nobucket").status()) == 400);
  CHECK(http_status(many.locate("tenant-a/").status()) == 400);

  // Named buckets: the first segment is a name, read as its own bucket, key prefix and region.
  S3SourceOptions named;
  named.region = "us-east-1";
  named.buckets = {{"photos", {"acme-photos-eu", "originals/", "eu-west-1"}},
                   {"avatars", {"acme-avatars", "", ""}}};
  named.allowed_key_prefixes = {"originals/company_X/", "company_X/"};
  named.access_key_id = "AKID";
  named.secret_access_key = "secret";
  S3Source aliases(named);
  auto photo = aliases.locate("photos/company_X/cat.jpg");
  REQUIRE(photo.ok());
  CHECK(photo->bucket == "acme-photos-eu");
  CHECK(photo->object == "originals/company_X/cat.jpg");
  CHECK(photo->region == "eu-west-1");
  TransferRequest photo_request = aliases.request_for(*photo);
  CHECK(photo_request.url ==
        "https://acme-photos-eu.s3.eu-west-1.amazonaws.com/originals/company_X/cat.jpg");
  CHECK(photo_request.aws_sigv4 == "aws:amz:eu-west-1:s3");
  auto avatar = aliases.locate("avatars/company_X/me.png");
  REQUIRE(avatar.ok());
  CHECK(avatar->bucket == "acme-avatars");
  CHECK(aliases.request_for(*avatar).url ==
        "https://acme-avatars.s3.us-east-1.amazonaws.com/company_X/me.png");
  CHECK(aliases.request_for(*avatar).aws_sigv4 == "aws:amz:us-east-1:s3");
  // The real bucket names are not names: only the configured names are.
  CHECK(http_status(aliases.locate("acme-photos-eu/originals/company_X/cat.jpg").status()) == 403);
  CHECK(http_status(aliases.locate("photos/company_Y/cat.jpg").status()) == 403);
  CHECK(http_status(aliases.locate("photos/").status()) == 400);
}

namespace {
S3SourceOptions server_options(const test::S3Server& s3) {
  S3SourceOptions o;
  o.endpoint = s3.endpoint();
  o.path_style = true;
  o.region = "us-east-1";
  o.access_key_id = s3.access_key_id();
  o.secret_access_key = s3.secret_access_key();
  o.bucket = "photos";
  o.timeout = 10s;
  return o;
}

// A moto IAM user allowed s3:*, and its key pair (moto checks signatures against these once
// /moto-api/reset-auth has been called).
std::pair<std::string, std::string> moto_iam_user(const test::S3Server& moto) {
  const std::string iam = moto.endpoint() + "/";
  const std::string form = "application/x-www-form-urlencoded";
  REQUIRE(test::http_call("POST", iam, "Action=CreateUser&UserName=thimble&Version=2010-05-08",
                          "iam", "test:test", form)
              .status == 200);
  test::HttpReply key =
      test::http_call("POST", iam, "Action=CreateAccessKey&UserName=thimble&Version=2010-05-08",
                      "iam", "test:test", form);
  REQUIRE(key.status == 200);
  const std::string policy =
      "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22"
      "%2C%22Action%22%3A%22s3%3A*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D";
  REQUIRE(test::http_call("POST", iam,
                          "Action=PutUserPolicy&UserName=thimble&PolicyName=s3&PolicyDocument=" +
                              policy + "&Version=2010-05-08",
                          "iam", "test:test", form)
              .status == 200);
  std::pair<std::string, std::string> pair{test::xml_value(key.body, "AccessKeyId"),
                                           test::xml_value(key.body, "SecretAccessKey")};
  REQUIRE_FALSE(pair.first.empty());
  return pair;
}
}  // namespace

TEST_CASE("objects come from a real S3 server, whatever characters their keys hold") {
  test::S3Server s3;
  s3.create_bucket("photos");
  const std::string photo = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  struct Row {
    const char* object;   // the S3 key
    const char* url_key;  // as it appears in a Thimble URL
  };
  const Row rows[] = {
      {"plain.jpg", "plain.jpg"},
      {"with space.jpg", "with%20space.jpg"},
      {"plus+sign.jpg", "plus%2Bsign.jpg"},
      {"percent%.jpg", "percent%25.jpg"},
      {"caf\xc3\xa9/\xe6\x97\xa5.jpg", "caf%C3%A9/%E6%97%A5.jpg"},
      {"a/b/c/deep.jpg", "a/b/c/deep.jpg"},
  };
  for (const auto& row : rows) s3.put("photos", aws_encode_key(row.object), photo);
  S3Source source(server_options(s3));
  for (const auto& row : rows) {
    CAPTURE(std::string(row.url_key));
    auto fetched = source.fetch(row.url_key, {});
    REQUIRE_MESSAGE(fetched.ok(), fetched.status().message());
    CHECK(fetched->bytes == photo);
    CHECK(fetched->validators.token.starts_with("e"));
  }
  auto missing = source.fetch("nope.jpg", {});
  REQUIRE_FALSE(missing.ok());
  CHECK(http_status(missing.status()) == 404);
  // The object's ETag makes revalidation a conditional GET.
  auto first = source.fetch("plain.jpg", {});
  REQUIRE(first.ok());
  FetchConditions same;
  same.if_token_in = {first->validators.token};
  auto again = source.fetch("plain.jpg", same);
  REQUIRE(again.ok());
  CHECK(again->not_modified);
  CHECK(again->bytes.empty());
  // Through the origin service: a replica with an empty cache answers the CDN's revalidation 304
  // after a conditional GET, without transforming.
  SystemClock clock;
  signing::UrlSigner signer({"k"}, false);
  cache::ResultCache cache_a(1 << 20, 1, clock), cache_b(1 << 20, 1, clock);
  OriginService a(OriginOptions{}, signer, {source, cache_a, clock});
  OriginService b(OriginOptions{}, signer, {source, cache_b, clock});
  const std::string url = signer.sign("fit-in/100x100/plain.jpg");
  OriginResponse full = test::serve(a, test::request("GET", url));
  REQUIRE(full.status == 200);
  OriginResponse revalidated =
      test::serve(b, test::request("GET", url, {{"if-none-match", *full.header("ETag")}}));
  CHECK(revalidated.status == 304);
  CHECK(cache_b.stats().insertions == 0);
  // The byte limit holds while streaming.
  S3SourceOptions small = server_options(s3);
  small.max_bytes = 1000;
  auto big = S3Source(small).fetch("plain.jpg", {});
  REQUIRE_FALSE(big.ok());
  CHECK(http_status(big.status()) == 413);
}

TEST_CASE("named buckets read their own bucket and key prefix on an S3 server") {
  test::S3Server s3;
  s3.create_bucket("acme-photos");
  s3.create_bucket("acme-avatars");
  const std::string photo = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  const std::string avatar = test::read_file(test::corpus("exif/Landscape_1.jpg"));
  s3.put("acme-photos", "originals/company_X/cat.jpg", photo);
  s3.put("acme-avatars", "company_X/me.jpg", avatar);
  test::TempDir dir;
  auto config = conf::load_config_text(
      "security: {keys: [k]}\n"
      "source:\n"
      "  type: s3\n"
      "  s3:\n"
      "    endpoint: '" +
          s3.endpoint() +
          "'\n"
          "    addressing: path\n"
          "    access_key_id: " +
          s3.access_key_id() +
          "\n"
          "    secret_access_key: " +
          s3.secret_access_key() +
          "\n"
          "    allowed_key_prefixes: [originals/company_X/, company_X/]\n"
          "    buckets:\n"
          "      photos: {bucket: acme-photos, key_prefix: originals/}\n"
          "      avatars: acme-avatars\n",
      dir.path().string(), nullptr);
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  auto source = make_source(*config);
  REQUIRE_MESSAGE(source.ok(), source.status().message());
  auto cat = (*source)->fetch("photos/company_X/cat.jpg", {});
  REQUIRE_MESSAGE(cat.ok(), cat.status().message());
  CHECK(cat->bytes == photo);
  auto me = (*source)->fetch("avatars/company_X/me.jpg", {});
  REQUIRE_MESSAGE(me.ok(), me.status().message());
  CHECK(me->bytes == avatar);
  // Missing in its bucket → 404; a real bucket name that is no configured name → 403; another
  // tenant's prefix → 403.
  CHECK(http_status((*source)->fetch("photos/company_X/dog.jpg", {}).status()) == 404);
  CHECK(http_status((*source)->fetch("acme-photos/originals/company_X/cat.jpg", {}).status()) ==
        403);
  CHECK(http_status((*source)->fetch("avatars/company_Y/me.jpg", {}).status()) == 403);

  // A listing (thimble-warm's) gives each named bucket's keys under its name, only those below its
  // key prefix and in an allowed prefix, as a URL carries them.
  s3.put("acme-photos", "elsewhere/x.jpg", photo);
  s3.put("acme-avatars", "company_Y/other.jpg", avatar);
  const auto keys = [&](const std::string& prefix) {
    std::vector<std::string> listed;
    const Status walked = (*source)->list_keys(prefix, [&](const ListedKey& key) {
      listed.push_back(key.key);
      return true;
    });
    CHECK_MESSAGE(walked.ok(), walked.message());
    std::sort(listed.begin(), listed.end());
    return listed;
  };
  CHECK(keys("") ==
        std::vector<std::string>{"avatars/company_X/me.jpg", "photos/company_X/cat.jpg"});
  CHECK(keys("photos/") == std::vector<std::string>{"photos/company_X/cat.jpg"});
  CHECK(keys("avatars/company") == std::vector<std::string>{"avatars/company_X/me.jpg"});
  CHECK(keys("nothing/").empty());
}

TEST_CASE("on an S3 server, the right keys fetch and an unknown access key is a 502") {
  test::S3Server s3;
  s3.create_bucket("photos");
  s3.put("photos", "plain.jpg", "not really a jpeg, but bytes");
  S3SourceOptions good = server_options(s3);
  if (s3.kind() == test::S3ServerKind::moto) {
    std::tie(good.access_key_id, good.secret_access_key) = moto_iam_user(s3);
    // From now on moto checks every signature.
    REQUIRE(s3.call("POST", "/moto-api/reset-auth", "0", "text/plain").status == 200);
  }
  auto fetched = S3Source(good).fetch("plain.jpg", {});
  REQUIRE_MESSAGE(fetched.ok(), fetched.status().message());
  CHECK(fetched->bytes == "not really a jpeg, but bytes");
  auto missing = S3Source(good).fetch("nope.jpg", {});
  REQUIRE_FALSE(missing.ok());
  CHECK(http_status(missing.status()) == 404);

  S3SourceOptions unknown = good;
  unknown.access_key_id = "AKIDUNKNOWN";
  auto refused = S3Source(unknown).fetch("plain.jpg", {});
  REQUIRE_FALSE(refused.ok());
  CHECK(http_status(refused.status()) == 502);
}

TEST_CASE("on an S3 server that checks signatures, a wrong secret is a 502") {
  if (test::skip_without_signature_checks()) return;
  test::S3Server s3;
  s3.create_bucket("photos");
  s3.put("photos", "plain.jpg", "not really a jpeg, but bytes");
  S3SourceOptions good = server_options(s3);
  std::tie(good.access_key_id, good.secret_access_key) = moto_iam_user(s3);
  REQUIRE(s3.call("POST", "/moto-api/reset-auth", "0", "text/plain").status == 200);
  auto fetched = S3Source(good).fetch("plain.jpg", {});
  REQUIRE_MESSAGE(fetched.ok(), fetched.status().message());

  S3SourceOptions wrong = good;
  wrong.secret_access_key += "x";
  auto refused = S3Source(wrong).fetch("plain.jpg", {});
  REQUIRE_FALSE(refused.ok());
  CHECK(http_status(refused.status()) == 502);
  // The session token is signed too: a wrong one is refused as well.
  S3SourceOptions token = good;
  token.session_token = "not-a-token";
  CHECK_FALSE(S3Source(token).fetch("plain.jpg", {}).ok());
}

// The round trip, replacement and TTL are the store contract's (test_contracts.cpp); here, where
// the object lands.
TEST_CASE("S3 result storage writes each result at its canonical path on an S3 server") {
  test::S3Server s3;
  s3.create_bucket("results");
  S3SourceOptions options = server_options(s3);
  options.bucket = "results";
  options.key_prefix = "thumbnails/";
  SystemClock clock;
  S3ResultStore store(options, std::chrono::hours(1), clock);
  cache::CachedResult value;
  value.body = test::read_file(test::corpus("exif/Landscape_1.jpg"));
  value.content_type = "image/jpeg";
  value.etag = "\"0123456789abcdef-e1\"";
  store.write("fit-in/300x200/filters:quality(80)/photos/a b.jpg", "photos/a b.jpg", value);
  // The object is where a CDN would look: the prefix and the canonical path.
  const test::HttpReply stored = s3.call(
      "GET", "/results/thumbnails/fit-in/300x200/filters%3Aquality%2880%29/photos/a%20b.jpg");
  CHECK(stored.status == 200);
  CHECK(stored.body == value.body);
}

// A store answering a listing with damaged or endless XML: a clear error, never a crash, a hang or
// a listing that never ends.
TEST_CASE("a damaged S3 listing stops with an error naming the bucket") {
  struct Row {
    const char* what;
    std::string body;
    int status;
  };
  const std::string entry = "<Contents><Key>a.jpg</Key><Size>10</Size></Contents>";
  const std::vector<Row> rows = {
      {"a key with a broken entity", "<R><Contents><Key>a&bogus;</Key></Contents></R>", 200},
      {"a key that never closes", "<R><Contents><Key>a.jpg</Contents></R>", 200},
      {"truncated without a next page", "<R>" + entry + "<IsTruncated>true</IsTruncated></R>", 200},
      {"an error answer", "<Error><Code>InternalError</Code></Error>", 500},
      {"access denied", "<Error><Code>AccessDenied</Code></Error>", 403},
  };
  for (const Row& row : rows) {
    CAPTURE(std::string(row.what));
    test::HttpOrigin store([&row](int fd, const test::OriginRequest&) {
      test::HttpOrigin::respond(fd, row.status, row.body);
    });
    S3SourceOptions options;
    options.endpoint = store.base();
    options.path_style = true;
    options.bucket = "photos";
    options.retries = 0;
    options.timeout = 5s;
    S3Source source(options);
    int listed = 0;
    const Status status = source.list_keys("", [&](const ListedKey&) {
      ++listed;
      return true;
    });
    CHECK_FALSE(status.ok());
    CHECK(status.message().find("photos") != std::string::npos);
    CHECK(listed <= 1);
  }
  // A store that answers every page with the same continuation token: refused at the second
  // page, not listed forever.
  const std::string page = "<R>" + entry +
                           "<IsTruncated>true</IsTruncated><NextContinuationToken>same"
                           "</NextContinuationToken></R>";
  test::HttpOrigin endless(
      [&page](int fd, const test::OriginRequest&) { test::HttpOrigin::respond(fd, 200, page); });
  S3SourceOptions options;
  options.endpoint = endless.base();
  options.path_style = true;
  options.bucket = "photos";
  S3Source source(options);
  int seen = 0;
  const Status looping = source.list_keys("", [&](const ListedKey& key) {
    CHECK(key.key == "a.jpg");
    ++seen;
    return true;
  });
  CHECK_FALSE(looping.ok());
  CHECK(looping.message().find("repeats its page") != std::string::npos);
  CHECK(seen == 2);
}
