// Hostile clients against the real server, second round: each test is an attack that once got
// through (cache poisoning through forged validators, a reader that never reads, lax framing),
// with a good request answered meanwhile.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <mutex>
#include <string>
#include <vector>

#include "http_origin.h"
#include "raw_socket.h"
#include "thimble_process.h"

using namespace thimble;
using namespace std::chrono_literals;

namespace {

std::string base64url(const std::string& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = buffer << 8 | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(buffer >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 63];
  return out;
}

// An HTTP origin serving one photo with an ETag, recording every request it was sent.
struct RecordingOrigin {
  std::string photo = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  std::mutex mutex;
  std::vector<test::OriginRequest> seen;
  test::HttpOrigin server{[this](int fd, const test::OriginRequest& r) {
    {
      std::lock_guard lock(mutex);
      seen.push_back(r);
    }
    const std::string validators = "ETag: \"v1\"\r\n";
    if (r.headers.count("if-none-match") && r.headers.at("if-none-match") == "\"v1\"") {
      return test::HttpOrigin::respond(fd, 304, "", validators);
    }
    test::HttpOrigin::respond(fd, 200, photo, validators);
  }};
  std::string source_yaml() const {
    return "{type: http, http: {base_url: '" + server.base() +
           "/', allow_private_networks: [127.0.0.1/32]}}";
  }
  std::vector<test::OriginRequest> requests() {
    std::lock_guard lock(mutex);
    return seen;
  }
};

}  // namespace

TEST_CASE("a forged If-None-Match never reaches the origin: only ETags Thimble issued do") {
  RecordingOrigin origin;
  const std::string server_yaml = "{host: 127.0.0.1, workers: 2, access_log: false}";
  test::ThimbleProcess first(server_yaml, "", "{max_age: 600}", "", origin.source_yaml());
  test::ThimbleProcess second(server_yaml, "", "{max_age: 600}", "", origin.source_yaml());
  test::Client client;
  // The transform hash of an ETag is public: one answer tells it for every replica.
  const std::string url = "fit-in/120x120/photo.jpg";
  test::Reply issued = client.request(first.url(url));
  REQUIRE(issued.status == 200);
  const std::string etag = issued.header("etag");
  const std::string transform = etag.substr(1, etag.find('-') - 1);
  REQUIRE(transform.size() == 16);

  // Header injection and a smuggled request, as an attacker would write them: a token that
  // decodes to CR LF and more, with no MAC, a made-up MAC, or the MAC of the real token.
  const std::string evil =
      "\"v1\"\r\nX-Injected: 1\r\n\r\nDELETE /photo.jpg HTTP/1.1\r\nHost: origin";
  const std::string mac = etag.substr(etag.rfind('.') + 1, 16);
  const std::string forged[] = {
      "\"" + transform + "-e" + base64url(evil) + "\"",
      "\"" + transform + "-e" + base64url(evil) + "." + std::string(16, 'a') + "\"",
      "\"" + transform + "-e" + base64url(evil) + "." + mac + "\"",
      "\"" + transform + "-e" + base64url("v1\"\0x") + "\"",
  };
  for (const std::string& tag : forged) {
    CAPTURE(tag);
    test::Reply r = client.request(second.url(url), {"If-None-Match: " + tag});
    CHECK(r.status == 200);  // answered as if it had no validator
    CHECK(r.header("etag") == etag);
  }
  // A later request for another size gets its own image, not a desynchronised answer.
  test::Reply other = client.request(second.url("fit-in/60x60/photo.jpg"));
  CHECK(other.status == 200);
  CHECK(other.header("etag") != etag);
  for (const test::OriginRequest& r : origin.requests()) {
    CHECK(r.path == "/photo.jpg");
    CHECK(r.headers.count("x-injected") == 0);
    CHECK(r.headers.count("if-none-match") == 0);
  }
  const std::size_t before = origin.requests().size();

  // The ETag the first replica issued is honoured by the second: a conditional GET, then 304.
  test::ThimbleProcess third(server_yaml, "", "{max_age: 600}", "", origin.source_yaml());
  test::Reply revalidated = client.request(third.url(url), {"If-None-Match: " + etag});
  CHECK(revalidated.status == 304);
  const auto after = origin.requests();
  REQUIRE(after.size() == before + 1);
  CHECK(after.back().headers.at("if-none-match") == "\"v1\"");
  CHECK(first.stop() == 0);
  CHECK(second.stop() == 0);
  CHECK(third.stop() == 0);
}

TEST_CASE("the access log stays valid UTF-8 whatever bytes a path holds") {
  test::ThimbleProcess server("{host: 127.0.0.1, workers: 2}");
  // Raw bytes no URL encoder writes: a lone 0xff, a truncated sequence, an overlong '/', and a
  // valid é that is kept as it is.
  const std::string path = "/unsafe/x\xff\xfe\xc3/\xc0\xaf\xed\xa0\x80/caf\xc3\xa9.jpg";
  const std::string answer = test::raw_exchange(
      server.port(), "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  REQUIRE(answer.size() > 12);
  const std::string log = server.log_with("caf");
  const std::size_t at = log.find("\"path\":\"/unsafe/x");
  REQUIRE(at != std::string::npos);
  const std::string line = log.substr(at, log.find('\n', at) - at);
  CAPTURE(line);
  CHECK(line.find("x\\u00ff\\u00fe\\u00c3/\\u00c0\\u00af\\u00ed\\u00a0\\u0080/caf\xc3\xa9.jpg") !=
        std::string::npos);
  CHECK(server.stop() == 0);
}

TEST_CASE("a FIFO, a folder or a device under the file source's root is 404 at once") {
  test::ThimbleProcess server("{host: 127.0.0.1, workers: 1, access_log: false}");
  REQUIRE(::mkfifo((server.originals() / "fifo.jpg").c_str(), 0600) == 0);
  std::filesystem::create_directories(server.originals() / "folder.jpg");
  test::Client client;
  for (int round = 0; round < 3; ++round) {  // more rounds than workers: none is held
    for (const char* name : {"fifo.jpg", "folder.jpg"}) {
      CAPTURE(name);
      const auto start = std::chrono::steady_clock::now();
      CHECK(client.request(server.url("fit-in/50x50/" + std::string(name))).status == 404);
      CHECK(std::chrono::steady_clock::now() - start < 5s);  // a hang guard
    }
  }
  CHECK(client.request(server.url("fit-in/50x50/photos/storm.jpg")).status == 200);
  CHECK(server.stop() == 0);
}
