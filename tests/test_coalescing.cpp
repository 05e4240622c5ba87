// Request coalescing, in the service and through the real HTTP adapter: a storm of identical CDN
// misses costs one fetch and one transform, however large it is; a failing source fails every
// waiter quickly; nobody hangs.
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cache/result_cache.h"
#include "http_client.h"
#include "proxy/file_source.h"
#include "proxy/http_server.h"
#include "proxy/origin_service.h"
#include "proxy/worker_pool.h"
#include "signing/signer.h"
#include "support.h"

using namespace thimble;
using namespace thimble::proxy;
using namespace std::chrono_literals;

namespace {

// Wraps a real source, counting fetches and slowing each one down (to make requests overlap).
class SlowSource final : public Source {
 public:
  SlowSource(Source& inner, std::chrono::milliseconds delay) : inner_(inner), delay_(delay) {}
  Result<SourceObject> fetch(std::string_view key, const FetchConditions& c) override {
    ++fetches;
    std::this_thread::sleep_for(delay_);
    return inner_.fetch(key, c);
  }
  std::atomic<int> fetches{0};

 private:
  Source& inner_;
  std::chrono::milliseconds delay_;
};

// Fails every fetch after a delay (fault injection).
class BrokenSource final : public Source {
 public:
  Result<SourceObject> fetch(std::string_view, const FetchConditions&) override {
    ++fetches;
    std::this_thread::sleep_for(200ms);
    return Status(Code::kUpstreamError, "the source failed");
  }
  std::atomic<int> fetches{0};
};

using Reply = test::HttpReply;

Reply get(const std::string& url) {
  return test::http_call("GET", url);
}

// The whole server (adapter, pool, service) in this process, on a free port.
struct Stack {
  SystemClock clock;
  signing::UrlSigner signer{{"k"}, false};
  cache::ResultCache results{64 << 20, 4, clock};
  conf::ServerConfig config;
  std::unique_ptr<OriginService> service;
  std::unique_ptr<WorkerPool> pool;
  std::unique_ptr<HttpServer> server;
  Metrics metrics;
  explicit Stack(Source& source, std::size_t queue_length = 200) {
    ServiceDependencies with(source, results, clock);
    with.metrics = &metrics;
    service = std::make_unique<OriginService>(OriginOptions{}, signer, with);
    pool = std::make_unique<WorkerPool>(2, queue_length);
    config.access_log = false;
    server = std::make_unique<HttpServer>(config, "127.0.0.1", 0 /* any free port */,
                                          HttpServer::Routes::kAll, *service, *pool, &metrics);
    REQUIRE(server->start().ok());
  }
  ~Stack() {
    pool->drain(10s);
    server->shutdown();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server->port()) + signer.sign(path);
  }
};

std::vector<Reply> storm(const std::string& url, int count) {
  std::vector<Reply> replies(static_cast<std::size_t>(count));
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&, i] { replies[static_cast<std::size_t>(i)] = get(url); });
  }
  for (auto& t : threads) t.join();
  return replies;
}

}  // namespace

TEST_CASE("64 identical concurrent requests cost one fetch and one transform") {
  test::TempDir dir;
  std::filesystem::copy_file(test::corpus("large/Bridge_by_Sander_Klootwijk.jpg"),
                             dir.path() / "b.jpg");
  FileSource files(dir.path().string(), 64 << 20);
  SlowSource source(files, 300ms);
  Stack stack(source);
  const auto replies = storm(stack.url("fit-in/300x200/b.jpg"), 64);
  for (const Reply& r : replies) {
    CHECK(r.status == 200);
    CHECK(r.body == replies.front().body);
  }
  CHECK(replies.front().body.size() > 1000);
  CHECK(source.fetches == 1);
  CHECK(stack.service->counters().renders == 1);
  // Several sizes of one new photo at once share one download.
  std::vector<std::thread> sizes;
  std::vector<Reply> sized(6);
  for (int i = 0; i < 6; ++i) {
    sizes.emplace_back([&, i] {
      sized[static_cast<std::size_t>(i)] =
          get(stack.url("fit-in/" + std::to_string(100 + i) + "x100/b.jpg"));
    });
  }
  for (auto& t : sizes) t.join();
  for (const Reply& r : sized) CHECK(r.status == 200);
  // The storm's download is kept: the other sizes do not fetch the photo again.
  CHECK(source.fetches == 1);
  CHECK(stack.service->counters().original_hits >= 1);
  // The metrics tell the same story: 70 answers, one download, 63 requests that did no work.
  CHECK(stack.metrics.requests(Route::kThumbnail, 200) == 70);
  CHECK(stack.metrics.in_flight() == 0);
  const std::string exposition = stack.metrics.render();
  CHECK(exposition.find("thimble_requests_total{route=\"thumbnail\",status=\"200\"} 70\n") !=
        std::string::npos);
  CHECK(exposition.find("thimble_stage_duration_seconds_count{stage=\"fetch\"} 1\n") !=
        std::string::npos);
  CHECK(exposition.find("thimble_stage_duration_seconds_count{stage=\"decode\"} 7\n") !=
        std::string::npos);
  CHECK(exposition.find("thimble_cache_requests_total{outcome=\"miss\"} 7\n") != std::string::npos);
}

TEST_CASE("a failing source fails every waiter quickly, and nobody hangs") {
  BrokenSource source;
  Stack stack(source);
  const auto start = std::chrono::steady_clock::now();
  const auto replies = storm(stack.url("fit-in/300x200/b.jpg"), 32);
  for (const Reply& r : replies) CHECK(r.status == 502);
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  CHECK(source.fetches < 32);  // waiters shared their leader's failure
  CHECK(stack.metrics.requests(Route::kThumbnail, 502) == 32);
  CHECK(stack.metrics.render().find("thimble_source_errors_total{kind=\"upstream_error\"} " +
                                    std::to_string(source.fetches.load()) + "\n") !=
        std::string::npos);
}

TEST_CASE("a source's 404 is remembered briefly, so a storm of junk URLs asks once") {
  test::TempDir dir;
  FileSource files(dir.path().string(), 64 << 20);
  SlowSource source(files, 0ms);
  Stack stack(source);
  for (int i = 0; i < 5; ++i) {
    CHECK(get(stack.url("fit-in/" + std::to_string(100 + i) + "x100/missing.jpg")).status == 404);
  }
  CHECK(source.fetches == 1);
  CHECK(stack.service->counters().not_found_hits == 4);
}

TEST_CASE("a storm larger than the queue is answered whole, and other work still gets a worker") {
  test::TempDir dir;
  std::filesystem::copy_file(test::corpus("large/Bridge_by_Sander_Klootwijk.jpg"),
                             dir.path() / "b.jpg");
  std::filesystem::copy_file(test::corpus("medium/mate_Storm.jpg"), dir.path() / "c.jpg");
  FileSource files(dir.path().string(), 64 << 20);
  SlowSource source(files, 400ms);
  // Two workers and room for two waiting jobs: 150 identical requests park on the first.
  Stack stack(source, 2);
  std::vector<Reply> replies;
  std::thread storming([&] { replies = storm(stack.url("fit-in/300x200/b.jpg"), 150); });
  std::this_thread::sleep_for(150ms);
  // While the storm waits for its one transform, a different thumbnail is made meanwhile.
  const Reply other = get(stack.url("fit-in/100x100/c.jpg"));
  storming.join();
  CHECK(other.status == 200);
  REQUIRE(replies.size() == 150);
  for (const Reply& r : replies) {
    CHECK(r.status == 200);
    CHECK(r.body == replies.front().body);
  }
  CHECK(source.fetches == 2);
  CHECK(stack.service->counters().renders == 2);
  CHECK(stack.metrics.requests(Route::kThumbnail, 503) == 0);
  CHECK(stack.metrics.in_flight() == 0);
}

TEST_CASE("parked requests get their leader's answer: 200, 304, or 503 when it is dropped") {
  test::TempDir dir;
  std::filesystem::copy_file(test::corpus("medium/mate_Storm.jpg"), dir.path() / "b.jpg");
  FileSource source(dir.path().string(), 64 << 20);
  SystemClock clock;
  signing::UrlSigner signer{{"k"}, false};
  cache::ResultCache nothing_kept{0, 1, clock};  // every request reaches the flights
  OriginService service(OriginOptions{}, signer, {source, nothing_kept, clock});
  OriginRequest request;
  request.method = "GET";
  request.path = signer.sign("fit-in/100x100/b.jpg");
  const auto job_for = [&](const OriginRequest& r) {
    auto begun = service.begin(r);
    REQUIRE(std::holds_alternative<Job>(begun));
    return std::get<Job>(std::move(begun));
  };
  std::vector<OriginResponse> parked;
  const auto park = [&](Job& job) {
    return service.coalesce(job, [&](OriginResponse r) { parked.push_back(std::move(r)); });
  };

  // The first leads; an identical one and a revalidation of another version park on it.
  Job leader = job_for(request);
  CHECK_FALSE(park(leader));
  CHECK(leader.lease);
  Job same = job_for(request);
  CHECK(park(same));
  OriginRequest stale = request;
  stale.if_none_match = "\"elsewhere-x\"";
  Job revalidation = job_for(stale);
  CHECK(park(revalidation));
  CHECK(parked.empty());
  const OriginResponse made = service.run(leader);
  CHECK(made.status == 200);
  CHECK(made.cache_outcome == "miss");
  REQUIRE(parked.size() == 2);
  for (const OriginResponse& r : parked) {
    CHECK(r.status == 200);
    CHECK(r.cache_outcome == "coalesced");
    CHECK(*r.body == *made.body);
    CHECK(*r.header("ETag") == *made.header("ETag"));
  }

  // A parked revalidation of the version being made is a 304.
  parked.clear();
  Job again = job_for(request);
  CHECK_FALSE(park(again));
  OriginRequest current = request;
  current.if_none_match = *made.header("ETag");
  Job fresh = job_for(current);
  CHECK(park(fresh));
  CHECK(service.run(again).status == 200);
  REQUIRE(parked.size() == 1);
  CHECK(parked[0].status == 304);
  CHECK(parked[0].body == nullptr);

  // A revalidation with nobody to wait for is not parked and opens nothing.
  Job alone = job_for(current);
  CHECK_FALSE(park(alone));
  CHECK_FALSE(alone.lease);

  // A leader dropped unrun (its queue was full) answers the parked ones 503, never leaves them.
  parked.clear();
  {
    Job dropped = job_for(request);
    CHECK_FALSE(park(dropped));
    Job waiting = job_for(request);
    CHECK(park(waiting));
  }
  REQUIRE(parked.size() == 1);
  CHECK(parked[0].status == 503);
  CHECK(*parked[0].header("Cache-Control") == "no-store");
  CHECK(parked[0].header("Retry-After") != nullptr);
  CHECK(service.counters().renders == 2);
  CHECK(service.counters().coalesced == 4);
}

namespace {

// How many of `count` new connections to 127.0.0.1:`port` complete their handshake within
// `wait` while nobody accepts them.
int handshakes(int port, int count, std::chrono::milliseconds wait) {
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(wait);
  int done = 0;
  for (int fd : fds) {
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t size = sizeof error;
    if (poll(&p, 1, 0) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 &&
        error == 0) {
      ++done;
    }
  }
  for (int fd : fds) close(fd);
  return done;
}

}  // namespace

TEST_CASE("the accept queue is resized to server.listen_backlog (Pistache keeps it at 128)") {
  // A listener nobody accepts from, with a queue of one: a burst mostly waits for SYN retries.
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int port = test::bind_loopback(listener);
  REQUIRE(listen(listener, 1) == 0);
  CHECK(handshakes(port, 8, 300ms) <= 2);
  CHECK(widen_listen_backlog(port, 64) == 1);
  CHECK(handshakes(port, 8, 300ms) == 8);
  close(listener);
  // The server's own listener is found and resized the same way.
  test::TempDir empty;
  FileSource files(empty.path().string(), 1 << 20);
  Stack stack(files);
  CHECK(widen_listen_backlog(stack.server->port(), 1024) == 1);
}
