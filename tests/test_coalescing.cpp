// Request coalescing, in the service and through the real HTTP adapter: a storm of identical CDN
// misses costs one fetch and one transform, however large it is; a failing source fails every
// waiter quickly; nobody hangs.
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "cache/result_cache.h"
#include "http_client.h"
#include "proxy/http/http_server.h"
#include "proxy/service/origin_service.h"
#include "proxy/service/worker_pool.h"
#include "proxy/sources/file_source.h"
#include "raw_socket.h"
#include "service_client.h"
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
    pool = std::make_unique<WorkerPool>(2, queue_length);
    ServiceDependencies with(source, results, clock);
    with.workers = pool.get();
    with.metrics = &metrics;
    service = std::make_unique<OriginService>(OriginOptions{}, signer, with);
    config.access_log = false;
    server = std::make_unique<HttpServer>(config, "127.0.0.1", 0 /* any free port */,
                                          HttpServer::Routes::kAll, *service, &metrics);
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

namespace {

// Holds a WorkerPool's only worker until opened, so requests queue and park behind it.
class Gate {
 public:
  explicit Gate(WorkerPool& pool) {
    auto running = std::make_shared<std::promise<void>>();
    std::future<void> started = running->get_future();
    REQUIRE(pool.try_submit([running, opened = opened_] {
      running->set_value();
      opened.wait();
    }));
    started.wait();
  }
  ~Gate() { open(); }
  void open() {
    if (!done_) open_.set_value();
    done_ = true;
  }

 private:
  std::promise<void> open_;
  std::shared_future<void> opened_ = open_.get_future().share();
  bool done_ = false;
};

// The answers submit() completes with, in the order they come, from any thread.
class Answers {
 public:
  OriginService::Completion collect() {
    return [this](OriginResponse response) {
      std::lock_guard lock(mutex_);
      answers_.push_back(std::move(response));
      arrived_.notify_all();
    };
  }
  // Waits (up to 10 s) until `count` answers have come.
  std::vector<OriginResponse> wait_for(std::size_t count) {
    std::unique_lock lock(mutex_);
    arrived_.wait_for(lock, 10s, [&] { return answers_.size() >= count; });
    return answers_;
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return answers_.size();
  }
  void clear() {
    std::lock_guard lock(mutex_);
    answers_.clear();
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<OriginResponse> answers_;
};

}  // namespace

TEST_CASE("parked requests get their leader's answer: 200, 304, or 503 when it is refused") {
  test::TempDir dir;
  std::filesystem::copy_file(test::corpus("medium/mate_Storm.jpg"), dir.path() / "b.jpg");
  FileSource source(dir.path().string(), 64 << 20);
  SystemClock clock;
  signing::UrlSigner signer{{"k"}, false};
  cache::ResultCache nothing_kept{0, 1, clock};  // every request reaches the flights
  WorkerPool workers(1, 1);                      // one worker, one place in the queue
  ServiceDependencies with(source, nothing_kept, clock);
  with.workers = &workers;
  OriginService service(OriginOptions{}, signer, with);
  const OriginRequest request = test::request("GET", signer.sign("fit-in/100x100/b.jpg"));
  Answers answers;

  // The first leads (it is queued); an identical one and a revalidation of another version park
  // on it, taking neither the worker nor a place in the queue.
  std::optional<Gate> gate;
  gate.emplace(workers);
  service.submit(request, answers.collect());
  service.submit(request, answers.collect());
  service.submit(test::request("GET", request.path, {{"if-none-match", "\"elsewhere-x\""}}),
                 answers.collect());
  CHECK(answers.size() == 0);
  CHECK(workers.queued() == 1);
  gate->open();
  std::vector<OriginResponse> made = answers.wait_for(3);
  REQUIRE(made.size() == 3);
  const auto leader = std::find_if(
      made.begin(), made.end(), [](const OriginResponse& r) { return r.cache_outcome == "miss"; });
  REQUIRE(leader != made.end());
  CHECK(leader->status == 200);
  const std::string etag = *leader->header("ETag");
  for (const OriginResponse& r : made) {
    CHECK(r.status == 200);
    CHECK(*r.body == *leader->body);
    CHECK(*r.header("ETag") == etag);
  }
  CHECK(std::count_if(made.begin(), made.end(),
                      [](const OriginResponse& r) { return r.cache_outcome == "coalesced"; }) == 2);

  // A parked revalidation of the version being made is a 304.
  answers.clear();
  gate.emplace(workers);
  service.submit(request, answers.collect());
  service.submit(test::request("GET", request.path, {{"if-none-match", etag}}), answers.collect());
  gate->open();
  made = answers.wait_for(2);
  REQUIRE(made.size() == 2);
  for (const OriginResponse& r : made) {
    CHECK(r.status == (r.cache_outcome == "coalesced" ? 304 : 200));
    if (r.status == 304) CHECK(r.body == nullptr);
  }

  // A revalidation with nobody to wait for is not parked: the source says the original is
  // unchanged, and nothing is transformed.
  answers.clear();
  const auto renders = service.counters().renders;
  service.submit(test::request("GET", request.path, {{"if-none-match", etag}}), answers.collect());
  made = answers.wait_for(1);
  REQUIRE(made.size() == 1);
  CHECK(made[0].status == 304);
  CHECK(made[0].cache_outcome == "miss");
  CHECK(service.counters().renders == renders);

  // A leader the full queue refuses answers 503 at once and leaves no flight behind: the next
  // identical request leads and is served.
  answers.clear();
  gate.emplace(workers);
  REQUIRE(workers.try_submit([] {}));  // the one place in the queue
  service.submit(request, answers.collect());
  made = answers.wait_for(1);
  REQUIRE(made.size() == 1);
  CHECK(made[0].status == 503);
  CHECK(*made[0].header("Cache-Control") == "no-store");
  CHECK(made[0].header("Retry-After") != nullptr);
  gate->open();
  for (int i = 0; i < 1000 && (workers.queued() > 0 || workers.running() > 0); ++i) {
    std::this_thread::sleep_for(1ms);
  }
  answers.clear();
  service.submit(request, answers.collect());
  made = answers.wait_for(1);
  REQUIRE(made.size() == 1);
  CHECK(made[0].status == 200);
  CHECK(service.counters().renders == 3);
  CHECK(service.counters().coalesced == 3);
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

TEST_CASE("a quiesced listener begins no new connection and reports the ones still queued") {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int port = test::bind_loopback(listener);
  REQUIRE(listen(listener, 64) == 0);
  CHECK(handshakes(port, 3, 300ms) == 3);  // made, and queued: nobody accepts them
  // Nobody accepts: after the timeout the three are still there to be accepted, and no new
  // connection is made (its SYN is dropped).
  CHECK(quiesce_listener(port, 100ms) == 3);
  CHECK(handshakes(port, 2, 300ms) == 0);
  // The queued ones are still there to be accepted.
  int accepted = 0;
  for (int i = 0; i < 3; ++i) {
    const int fd = accept(listener, nullptr, nullptr);
    if (fd >= 0) {
      ++accepted;
      close(fd);
    }
  }
  CHECK(accepted == 3);
  CHECK(quiesce_listener(port, 100ms) == 0);  // an empty queue: nothing to wait for
  close(listener);
}

TEST_CASE("a plugged listener answers the connections it still queues, then makes none") {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int port = test::bind_loopback(listener);
  REQUIRE(listen(listener, 0) == 0);  // as quiesce_listener leaves it without a filter
  // An acceptor watching it, as Pistache's does, stops watching.
  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  epoll_event watch{};
  watch.events = EPOLLIN;
  REQUIRE(epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &watch) == 0);
  CHECK(stop_watching(listener));
  CHECK(epoll_ctl(epoll, EPOLL_CTL_DEL, listener, nullptr) == -1);
  CHECK(errno == ENOENT);
  close(epoll);

  // A client whose connection is queued, its request sent.
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
  REQUIRE(send(client, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));

  std::string seen;
  const Plugged plugged = plug_listener(
      listener,
      [&](int fd) {
        char buffer[256];
        const ssize_t got = recv(fd, buffer, sizeof buffer, 0);
        if (got > 0) seen.assign(buffer, static_cast<std::size_t>(got));
        const std::string answer = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
        close(fd);
      },
      std::chrono::steady_clock::now() + 2s);
  CHECK(plugged.answered == 1);
  CHECK(plugged.rounds == 1);
  CHECK(seen == request);
  REQUIRE(plugged.plug >= 0);
  char reply[128] = {};
  CHECK(recv(client, reply, sizeof reply - 1, 0) > 0);
  CHECK(std::string(reply).starts_with("HTTP/1.1 503"));
  close(client);
  // The queue holds the plug: every new SYN is dropped, no handshake completes.
  CHECK(handshakes(port, 2, 300ms) == 0);
  close(listener);
  close(plugged.plug);
}

TEST_CASE("handshakes waiting for room in an accept queue are counted") {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int port = test::bind_loopback(listener);
  // With TCP_DEFER_ACCEPT the server keeps a connection that has sent nothing half-open.
  const int defer_s = 5;
  REQUIRE(setsockopt(listener, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof defer_s) == 0);
  REQUIRE(listen(listener, 16) == 0);
  CHECK(half_open_handshakes(port) == 0);
  const int first = test::connect_loopback(port);
  const int second = test::connect_loopback(port);
  REQUIRE(first >= 0);
  REQUIRE(second >= 0);
  CHECK(half_open_handshakes(port) == 2);
  close(first);
  close(second);
  close(listener);
}
