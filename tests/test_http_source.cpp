// proxy/HttpSource against a real (misbehaving on demand) origin on 127.0.0.1, and the SSRF rules.
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "cache/result_cache.h"
#include "http_origin.h"
#include "proxy/service/origin_service.h"
#include "proxy/service/status_table.h"
#include "proxy/sources/address_policy.h"
#include "proxy/sources/curl_transfer.h"
#include "proxy/sources/http_source.h"
#include "service_client.h"
#include "signing/signer.h"
#include "support.h"

using namespace thimble;
using namespace thimble::proxy;
using namespace std::chrono_literals;

namespace {

const std::string kLastModified = "Sat, 01 Jan 2022 00:00:00 GMT";

// The origin's routes, each a behaviour a real origin can have.
void route(int fd, const test::OriginRequest& r, const std::string& photo, int port,
           test::HttpOrigin* self) {
  using O = test::HttpOrigin;
  const std::string validators = "ETag: \"v1\"\r\nLast-Modified: " + kLastModified + "\r\n";
  if (r.path == "/photo.jpg") {
    if (r.headers.count("if-none-match") && r.headers.at("if-none-match") == "\"v1\"") {
      return O::respond(fd, 304, "", validators);
    }
    return O::respond(fd, 200, photo, validators);
  }
  if (r.path == "/dated.jpg") {
    if (r.headers.count("if-modified-since") &&
        r.headers.at("if-modified-since") == kLastModified) {
      return O::respond(fd, 304, "");
    }
    return O::respond(fd, 200, photo, "Last-Modified: " + kLastModified + "\r\n");
  }
  if (r.path == "/plain.jpg") return O::respond(fd, 200, photo);
  if (r.path == "/missing") return O::respond(fd, 404, "no");
  if (r.path == "/gone") return O::respond(fd, 410, "gone");
  if (r.path == "/teapot") return O::respond(fd, 418, "teapot");
  if (r.path == "/error") return O::respond(fd, 500, "boom");
  if (r.path == "/flaky") {
    if (self->hits("/flaky") == 1) return O::respond(fd, 503, "busy");
    return O::respond(fd, 200, photo);
  }
  if (r.path == "/slow-headers") {
    std::this_thread::sleep_for(2500ms);
    return O::respond(fd, 200, photo);
  }
  if (r.path == "/slow-body") {
    O::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < 25 && !self->stopping(); ++i) {
      if (!O::send_all(fd, std::string(10, 'x'))) return;
      std::this_thread::sleep_for(100ms);
    }
    return;
  }
  if (r.path == "/reset") {
    O::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n" +
                        photo.substr(0, 1000));
    linger hard{1, 0};  // close with RST
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    return;
  }
  if (r.path == "/endless") {
    O::send_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    const std::string chunk(64 * 1024, 'z');
    for (int i = 0; i < 2000 && O::send_all(fd, chunk); ++i) {
    }
    return;
  }
  if (r.path == "/short") {
    return (void)O::send_all(
        fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n0123456789");
  }
  if (r.path == "/redirect-ok") return O::respond(fd, 302, "", "Location: /photo.jpg\r\n");
  if (r.path == "/redirect-private") {
    return O::respond(fd, 302, "", "Location: http://10.1.2.3/photo.jpg\r\n");
  }
  if (r.path == "/redirect-loop") return O::respond(fd, 302, "", "Location: /redirect-loop\r\n");
  if (r.path == "/redirect-localhost") {
    return O::respond(fd, 302, "",
                      "Location: http://localhost:" + std::to_string(port) + "/photo.jpg\r\n");
  }
  O::respond(fd, 404, "unknown route");
}

struct Origin {
  std::string photo = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  std::unique_ptr<test::HttpOrigin> server;
  Origin() {
    server = std::make_unique<test::HttpOrigin>([this](int fd, const test::OriginRequest& r) {
      route(fd, r, photo, server->port(), server.get());
    });
  }
};

HttpSourceOptions local_options(int port) {
  HttpSourceOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/";
  o.allowed_networks = {*Network::parse("127.0.0.1/32")};
  o.timeout = 1500ms;
  o.connect_timeout = 500ms;
  o.max_bytes = 4 << 20;
  return o;
}

}  // namespace

TEST_CASE("internal addresses are refused in every form unless allowed") {
  AddressPolicy policy;
  struct Row {
    const char* ip;
    bool permitted;
  };
  const Row rows[] = {
      {"8.8.8.8", true},
      {"1.1.1.1", true},
      {"127.0.0.1", false},
      {"127.255.0.9", false},
      {"10.0.0.1", false},
      {"100.64.1.1", false},
      {"169.254.169.254", false},
      {"172.16.0.1", false},
      {"172.31.255.255", false},
      {"172.32.0.1", true},
      {"192.168.1.1", false},
      {"0.0.0.0", false},
      {"224.0.0.1", false},
      {"255.255.255.255", false},
      {"::1", false},
      {"::", false},
      {"::ffff:127.0.0.1", false},
      {"::ffff:8.8.8.8", true},
      {"::127.0.0.1", false},
      {"64:ff9b::a00:1", false},
      {"fe80::1", false},
      {"fc00::1", false},
      {"fd12:3456::1", false},
      {"ff02::1", false},
      {"2606:4700:4700::1111", true},
  };
  for (const auto& row : rows) {
    CAPTURE(std::string(row.ip));
    CHECK(policy.permits(row.ip) == row.permitted);
  }
  AddressPolicy tests({*Network::parse("127.0.0.1/32"), *Network::parse("fd00::/8")});
  CHECK(tests.permits("127.0.0.1"));
  CHECK_FALSE(tests.permits("127.0.0.2"));
  CHECK(tests.permits("fd12::1"));
  CHECK_FALSE(Network::parse("10.0.0.0/33").has_value());
  CHECK_FALSE(Network::parse("not-an-ip").has_value());
}

TEST_CASE("image URLs must name an allowed host, and tricks that hide the host are refused") {
  HttpSourceOptions o;
  o.allowed_hosts = {"images.example.com", "*.cdn.example.com", "localhost:8080"};
  HttpSource source(o);
  struct Row {
    const char* key;
    const char* url;  // nullptr: refused
  };
  const Row rows[] = {
      {"https://images.example.com/a.jpg", "https://images.example.com/a.jpg"},
      {"images.example.com/a.jpg", "https://images.example.com/a.jpg"},
      {"https%3A%2F%2Fimages.example.com%2Fa%20b.jpg", "https://images.example.com/a%20b.jpg"},
      {"https://x.cdn.example.com/a.jpg", "https://x.cdn.example.com/a.jpg"},
      {"http://localhost:8080/a.jpg", "http://localhost:8080/a.jpg"},
      {"https://cdn.example.com/a.jpg", nullptr},
      {"https://evilcdn.example.com/a.jpg", nullptr},
      {"http://localhost/a.jpg", nullptr},
      {"http://2130706433/a.jpg", nullptr},
      {"http://0x7f000001/a.jpg", nullptr},
      {"http://017700000001/a.jpg", nullptr},
      {"http://[::1]/a.jpg", nullptr},
      {"http://[::ffff:127.0.0.1]/a.jpg", nullptr},
      {"https://images.example.com@evil.com/a.jpg", nullptr},
      {"https://user:pw@images.example.com/a.jpg", nullptr},
      {"ftp://images.example.com/a.jpg", nullptr},
      {"https://images.example.com:8443/a.jpg", nullptr},
  };
  for (const auto& row : rows) {
    CAPTURE(std::string(row.key));
    Result<std::string> url = source.url_for(row.key);
    if (row.url) {
      REQUIRE_MESSAGE(url.ok(), url.status().message());
      CHECK(*url == row.url);
    } else {
      REQUIRE_FALSE(url.ok());
      CHECK(http_status(url.status()) == 403);
    }
  }
  HttpSourceOptions based;
  based.base_url = "https://img.example.com/originals/";
  HttpSource base(based);
  CHECK(*base.url_for("a/b%20c.jpg") == "https://img.example.com/originals/a/b%20c.jpg");
  for (const char* escape : {"../secret.jpg", "a/../../secret.jpg", "%2e%2e/secret.jpg",
                             "/etc/passwd", "a/%2E/b.jpg", "a\\..\\b"}) {
    CAPTURE(std::string(escape));
    auto refused = base.url_for(escape);
    REQUIRE_FALSE(refused.ok());
    CHECK(http_status(refused.status()) == 403);
  }
}

TEST_CASE("an HTTP origin's answers map to what a CDN origin must say") {
  Origin origin;
  HttpSource source(local_options(origin.server->port()));
  auto fetched = source.fetch("photo.jpg", {});
  REQUIRE_MESSAGE(fetched.ok(), fetched.status().message());
  CHECK(fetched->bytes == origin.photo);
  CHECK(fetched->validators.token == token_from_etag("\"v1\""));
  CHECK(fetched->validators.last_modified.has_value());
  struct Row {
    const char* key;
    int status;
  };
  const Row rows[] = {
      {"missing", 404}, {"gone", 404},  {"teapot", 502},           {"error", 502},
      {"reset", 502},   {"short", 502}, {"redirect-private", 403}, {"redirect-loop", 502},
  };
  for (const auto& row : rows) {
    CAPTURE(std::string(row.key));
    auto r = source.fetch(row.key, {});
    REQUIRE_FALSE(r.ok());
    CHECK(http_status(r.status()) == row.status);
  }
  // 5xx is retried (1 + 2 retries); 4xx is not.
  CHECK(origin.server->hits("/error") == 3);
  CHECK(origin.server->hits("/teapot") == 1);
  auto recovered = source.fetch("flaky", {});
  CHECK(recovered.ok());
  CHECK(origin.server->hits("/flaky") == 2);
  auto redirected = source.fetch("redirect-ok", {});
  REQUIRE(redirected.ok());
  CHECK(redirected->bytes == origin.photo);
}

TEST_CASE("slow, endless and oversized originals end with 504 or 413 within the time limit") {
  Origin origin;
  HttpSourceOptions options = local_options(origin.server->port());
  options.max_bytes = 1 << 20;
  HttpSource source(options);
  for (auto [key, status] :
       {std::pair{"slow-headers", 504}, std::pair{"slow-body", 504}, std::pair{"endless", 413}}) {
    CAPTURE(std::string(key));
    const auto start = std::chrono::steady_clock::now();
    auto r = source.fetch(key, {});
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE_FALSE(r.ok());
    CHECK(http_status(r.status()) == status);
    CHECK(took < 2500ms);  // the 1.5 s limit, with room for a loaded machine
  }
  options.max_bytes = 1000;  // smaller than the photo: refused while streaming
  HttpSource tiny(options);
  auto big = tiny.fetch("photo.jpg", {});
  REQUIRE_FALSE(big.ok());
  CHECK(http_status(big.status()) == 413);
}

TEST_CASE("a host that resolves to a refused address is refused at connect time, redirects too") {
  Origin origin;
  HttpSourceOptions options;
  options.allowed_hosts = {"localhost:" + std::to_string(origin.server->port()),
                           "127.0.0.1:" + std::to_string(origin.server->port())};
  options.timeout = 1500ms;
  HttpSource source(options);  // no private network allowed
  auto direct =
      source.fetch("http://localhost:" + std::to_string(origin.server->port()) + "/photo.jpg", {});
  REQUIRE_FALSE(direct.ok());
  CHECK(http_status(direct.status()) == 403);
  CHECK(origin.server->hits("/photo.jpg") == 0);  // never connected
  options.allowed_networks = {*Network::parse("127.0.0.1/32")};
  HttpSource allowed(options);
  // The redirect goes to `localhost`, which may resolve to ::1 as well as 127.0.0.1: ::1 is
  // refused, 127.0.0.1 connects, and the fetch succeeds through the allowed address only.
  auto via = allowed.fetch(
      "http://127.0.0.1:" + std::to_string(origin.server->port()) + "/redirect-localhost", {});
  REQUIRE_MESSAGE(via.ok(), via.status().message());
  CHECK(via->bytes == origin.photo);
}

TEST_CASE("revalidation becomes a conditional GET: 304 without a download or a transform") {
  Origin origin;
  HttpSource source(local_options(origin.server->port()));
  SystemClock clock;
  signing::UrlSigner signer({"k"}, false);
  cache::ResultCache first_cache(1 << 20, 1, clock);
  OriginService first(OriginOptions{}, signer, {source, first_cache, clock});
  const std::string url = signer.sign("fit-in/100x100/photo.jpg");
  OriginResponse full = test::serve(first, test::request("GET", url));
  REQUIRE(full.status == 200);
  const std::string etag = *full.header("ETag");
  CHECK(*full.header("Last-Modified") == kLastModified);
  // Another replica, empty cache: the CDN revalidates with the ETag it holds.
  cache::ResultCache second_cache(1 << 20, 1, clock);
  OriginService second(OriginOptions{}, signer, {source, second_cache, clock});
  OriginResponse revalidated =
      test::serve(second, test::request("GET", url, {{"if-none-match", etag}}));
  CHECK(revalidated.status == 304);
  CHECK(*revalidated.header("ETag") == etag);
  CHECK(second_cache.stats().insertions == 0);
  // Last-Modified only: If-Modified-Since goes through to the origin.
  OriginResponse dated =
      test::serve(first, test::request("GET", signer.sign("fit-in/100x100/dated.jpg")));
  REQUIRE(dated.status == 200);
  OriginResponse dated_again =
      test::serve(second, test::request("GET", signer.sign("fit-in/100x100/dated.jpg"),
                                        {{"if-none-match", *dated.header("ETag")}}));
  CHECK(dated_again.status == 304);
  // No validators at all: the content hash still gives a stable ETag.
  OriginResponse plain1 =
      test::serve(first, test::request("GET", signer.sign("fit-in/100x100/plain.jpg")));
  OriginResponse plain2 =
      test::serve(second, test::request("GET", signer.sign("fit-in/100x100/plain.jpg")));
  CHECK(*plain1.header("ETag") == *plain2.header("ETag"));
}

TEST_CASE("misbehaving origins leak no descriptors: rounds of failures leave the count flat") {
  Origin origin;
  HttpSourceOptions options = local_options(origin.server->port());
  options.max_bytes = 1 << 20;
  HttpSource source(options);
  auto open_descriptors = [] {
    return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                         std::filesystem::directory_iterator{});
  };
  auto round = [&] {
    for (const char* key : {"reset", "short", "endless", "error", "missing", "redirect-private",
                            "slow-headers", "photo.jpg"}) {
      (void)source.fetch(key, {});
    }
    // The origin runs in this process: count only once it has closed its side too.
    REQUIRE(origin.server->wait_idle(5s));
  };
  round();
  const auto after_first = open_descriptors();
  round();
  round();
  CHECK(open_descriptors() <= after_first);
}

TEST_CASE("the request's deadline bounds the fetch: a slow origin is 504 at the deadline") {
  Origin origin;
  HttpSource source(local_options(origin.server->port()));  // the source alone waits 1.5 s
  SystemClock clock;
  signing::UrlSigner signer({"k"}, false);
  cache::ResultCache results(1 << 20, 1, clock);
  OriginOptions options;
  options.server.request_timeout_ms = 300;
  OriginService service(options, signer, {source, results, clock});
  const auto start = std::chrono::steady_clock::now();
  OriginResponse slow =
      test::serve(service, test::request("GET", signer.sign("fit-in/100x100/slow-headers")));
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(slow.status == 504);
  CHECK(*slow.header("Cache-Control") == "no-store");
  CHECK(took < 1200ms);  // the 300 ms deadline, not the source's 1.5 s, with room for load
  // The worker is free again and the same source still serves.
  CHECK(
      test::serve(service, test::request("GET", signer.sign("fit-in/100x100/photo.jpg"))).status ==
      200);
}
