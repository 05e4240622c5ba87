// Hostile clients against the real server, second round: each test is an attack that once got
// through (cache poisoning through forged validators, a reader that never reads, lax framing),
// with a good request answered meanwhile.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http_origin.h"
#include "raw_socket.h"
#include "thimble_process.h"

using namespace thimble;
using namespace std::chrono_literals;

namespace {

// The unpadded base64url Thimble's validator tokens use.
std::string base64url(const std::string& bytes) {
  std::string out = signing::base64url_encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
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

namespace {

// The server's CPU time so far (user + system), in seconds.
double cpu_seconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The server's resident memory, in MiB.
double rss_mib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) return std::stod(line.substr(6)) / 1024;
  }
  return 0;
}

// A connection with a 2 KB receive buffer that sends `requests` and never reads.
int stalled_reader(int port, const std::string& requests) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 2048;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::send(fd, requests.data(), requests.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(requests.size()));
  return fd;
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

TEST_CASE("clients that never read cost only their own connections: no busy reactor, no copies") {
  test::ThimbleProcess server(
      "{host: 127.0.0.1, workers: 2, access_log: false, "
      "write_timeout_ms: 4000}");
  test::Client client;
  // A big answer, made once and then served from the result cache.
  const std::string big = server.url("fit-in/2500x2500/filters:format(png)/large.jpg");
  test::Reply made = client.request(big);
  REQUIRE(made.status == 200);
  const std::size_t size = made.body.size();
  MESSAGE("the answer each stalled reader asks three times for: " << size / 1024 << " KB");
  REQUIRE(size > 4u << 20);
  const std::string path = big.substr(server.base().size());
  const std::string ask = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  const double rss_before = rss_mib(server.pid());
  const double cpu_before = cpu_seconds(server.pid());
  const int first = stalled_reader(server.port(), ask + ask + ask);
  const int second = stalled_reader(server.port(), ask + ask + ask);

  // Meanwhile every other client is answered at once.
  std::vector<double> health;
  for (int i = 0; i < 12; ++i) {
    std::this_thread::sleep_for(200ms);
    test::Client other;
    const auto start = std::chrono::steady_clock::now();
    CHECK(other.request(server.base() + "/healthz").status == 200);
    health.push_back(ms_since(start));
  }
  const auto start = std::chrono::steady_clock::now();
  CHECK(client.request(server.url("fit-in/80x80/photos/storm.jpg")).status == 200);
  const double thumbnail_ms = ms_since(start);
  const double cpu = cpu_seconds(server.pid()) - cpu_before;
  const double rss_growth = rss_mib(server.pid()) - rss_before;
  std::sort(health.begin(), health.end());
  MESSAGE("with two stalled readers: /healthz median "
          << health[health.size() / 2] << " ms, max " << health.back() << " ms; a new thumbnail "
          << thumbnail_ms << " ms; server CPU " << cpu << " s over 2.4 s; RSS +" << rss_growth
          << " MiB");
  CHECK(health.back() < 1000);  // a hang guard; the figures above are the report
  CHECK(cpu < 1.0);             // no loop spinning on a socket that takes nothing
  CHECK(rss_growth < 100);      // the answers are shared with the cache, never copied

  // Past server.write_timeout_ms without progress, each stalled connection is closed: reading
  // now finds the end of it long before three answers.
  std::this_thread::sleep_for(3s);
  for (const int fd : {first, second}) {
    const auto reading = std::chrono::steady_clock::now();
    const std::string got = test::read_until_closed(fd, 5000);
    CHECK(got.size() < 3 * size);
    CHECK(ms_since(reading) < 4500);
    ::close(fd);
  }
  CHECK(server.stop() == 0);
}

TEST_CASE("HTTP/1.1 framing the RFC 9112 way: pipelining in order, 400 and close for the rest") {
  test::ThimbleProcess server(
      "{host: 127.0.0.1, workers: 2, access_log: false, "
      "header_timeout_ms: 1000}");
  const std::string thumbnail =
      server.url("fit-in/50x50/photos/storm.jpg").substr(server.base().size());
  // Three requests in one write: three answers, in order; the last asked to close.
  const auto start = std::chrono::steady_clock::now();
  const std::string answers =
      test::raw_exchange(server.port(),
                         "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET " + thumbnail +
                             " HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n"
                             "Connection: close\r\n\r\n",
                         5000);
  CHECK(test::count_answers(answers) == 3);
  const std::size_t image = answers.find("Content-Type: image/jpeg");
  CHECK(answers.find("HTTP/1.1 200") == 0);
  CHECK(image != std::string::npos);
  CHECK(image < answers.rfind("HTTP/1.1 200"));
  CHECK(ms_since(start) < 3000);  // closed after the last answer, not at a timeout

  const struct {
    const char* what;
    std::string request;
    int status;
  } refused[] = {
      {"conflicting Content-Length",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"Content-Length: abc", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
       400},
      {"Content-Length: +5", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 400},
      {"Transfer-Encoding with a space",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
      {"Transfer-Encoding: chunked",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400},
      {"obs-fold", "GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400},
      {"bare LF", "GET /healthz HTTP/1.1\nHost: x\n\n", 400},
      {"a head that never ends", "GET /healthz HTTP/1.1\r\nHost: x\r\n", 408},
  };
  for (const auto& r : refused) {
    const std::string what = r.what;
    CAPTURE(what);
    const auto sent = std::chrono::steady_clock::now();
    // A valid request after the bad one must not be answered: the connection ends first.
    const std::string answer = test::raw_exchange(
        server.port(),
        r.request + (r.status == 408 ? "" : "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 5000);
    const double took = ms_since(sent);
    REQUIRE(answer.size() > 12);
    CHECK(std::atoi(answer.c_str() + 9) == r.status);
    CHECK(test::count_answers(answer) == 1);
    CHECK(answer.find("Connection: close") != std::string::npos);
    CHECK(took < (r.status == 408 ? 2500 : 1500));  // answered and closed, not left to hang
    MESSAGE(what << ": " << r.status << ", closed after " << took << " ms");
  }
  CHECK(server.stop() == 0);
}

TEST_CASE(
    "Connection: close and HTTP/1.0 end the connection after the answer, keep-alive keeps it") {
  test::ThimbleProcess server("{host: 127.0.0.1, workers: 2, access_log: false}");
  const struct {
    const char* request;
    bool closes;
  } rows[] = {
      {"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true},
      {"GET /healthz HTTP/1.0\r\n\r\n", true},
      {"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false},
      {"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.request);
    const int fd = test::connect_loopback(server.port());
    REQUIRE(fd >= 0);
    const std::string request = row.request;
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
    const auto start = std::chrono::steady_clock::now();
    const std::string answer = test::read_until_closed(fd, 1500);
    const double took = ms_since(start);
    CHECK(answer.find("HTTP/1.1 200") == 0);
    CHECK((answer.find("Connection: close") != std::string::npos) == row.closes);
    // Closed: the end arrives right after the answer. Kept: nothing until the 1.5 s wait ends.
    CHECK((took < 1000) == row.closes);
    ::close(fd);
  }
  CHECK(server.stop() == 0);
}
