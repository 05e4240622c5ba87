#include "proxy/http_server.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "proxy/access_log.h"
#include "proxy/header_policy.h"

namespace thimble::proxy {
namespace {

namespace Http = Pistache::Http;
using SteadyClock = std::chrono::steady_clock;

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

}  // namespace

// Answers handed to Pistache's reactor but perhaps not written yet: Pistache drops whatever its
// reactor has not written when it stops, so shutdown() waits for them (bounded). The hot path
// costs one relaxed store per answer; connections are noted only while draining.
class PendingAnswers {
 public:
  void sent(int fd) {
    last_.store(SteadyClock::now().time_since_epoch().count(), std::memory_order_relaxed);
    if (!watching_.load(std::memory_order_relaxed)) return;
    std::lock_guard lock(mutex_);
    fds_.push_back(fd);
  }
  void watch() { watching_.store(true); }

  // Until no answer was handed over for a while and the kernel holds nothing unsent for the
  // connections answered while draining, or until `deadline`.
  void wait_written(SteadyClock::time_point deadline) const {
    constexpr auto kQuiet = std::chrono::milliseconds(200);  // ample for the reactor to write
    while (SteadyClock::now() < deadline) {
      const SteadyClock::time_point last{
          SteadyClock::duration(last_.load(std::memory_order_relaxed))};
      bool unsent = false;
      {
        std::lock_guard lock(mutex_);
        for (int fd : fds_) {
          int queued = 0;
          if (::ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0) unsent = true;
        }
      }
      if (!unsent && SteadyClock::now() - last >= kQuiet) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  std::atomic<SteadyClock::rep> last_{0};
  std::atomic<bool> watching_{false};
  mutable std::mutex mutex_;
  std::vector<int> fds_;
};

namespace {

// What the adapter keeps of a request to finish it later, on whichever thread.
struct Exchange {
  std::weak_ptr<Pistache::Tcp::Peer> peer;
  std::string method;
  std::string path;
  std::string request_id;
  bool head_only = false;
  bool keep_alive = true;
  bool close_after = false;  // end the connection once the answer is written
  bool access_log = true;
  Metrics* metrics = nullptr;
  PendingAnswers* pending = nullptr;
  SteadyClock::time_point started;
};

void finish(const Exchange& exchange, const OriginResponse& response) {
  std::string bytes =
      serialize_response(response, exchange.head_only, exchange.keep_alive,
                         http_date(std::chrono::system_clock::now()), exchange.request_id);
  // Counted before the bytes leave, so a client that has its answer also finds it in /metrics.
  const std::chrono::duration<double> took = SteadyClock::now() - exchange.started;
  if (exchange.metrics) {
    exchange.metrics->request_finished(response.route, response.status, response.cache_outcome,
                                       took.count());
  }
  if (auto peer = exchange.peer.lock()) {
    // What ResponseWriter::send() would do: mark the connection idle again (so Pistache's
    // request timer leaves it alone) and queue the bytes on the reactor.
    peer->setIdle(true);
    const std::size_t size = bytes.size();
    auto written = peer->send(Pistache::RawBuffer(std::move(bytes), size));
    if (exchange.close_after) {
      const int fd = peer->fd();
      written.then([fd](ssize_t) { ::shutdown(fd, SHUT_RDWR); },
                   [fd](std::exception_ptr) { ::shutdown(fd, SHUT_RDWR); });
    }
    exchange.pending->sent(peer->fd());
  }
  if (exchange.access_log) {
    const transform::StageTimes& stages = response.times.stages;
    log_access({exchange.request_id, exchange.method, exchange.path, response.status,
                exchange.head_only ? 0 : response.body_size(), took.count() * 1000,
                response.cache_outcome, response.source_key, response.times.fetch_ms,
                stages.decode_ms, stages.sniff_ms + stages.smart_ms + stages.transform_ms,
                stages.encode_ms, response.error});
  }
}

// Pistache parses Accept into media types and cannot write it back; rebuild it from them.
std::string accept_value(const Http::Request& request) {
  auto accept = request.headers().tryGet<Http::Header::Accept>();
  if (!accept) return {};
  std::string out;
  for (const auto& media : accept->media()) {
    if (!out.empty()) out += ", ";
    out += media.toString();
    if (media.q() && media.q()->value() == 0) out += ";q=0";
  }
  return out;
}

std::string header_value(const Http::Request& request, const char* name) {
  if (auto typed = request.headers().tryGet(name)) {
    std::ostringstream out;
    typed->write(out);
    return out.str();
  }
  if (auto raw = request.headers().tryGetRaw(name)) return raw->value();
  return {};
}

bool wants_keep_alive(const Http::Request& request) {
  auto connection = request.headers().tryGet<Http::Header::Connection>();
  if (request.version() == Http::Version::Http11) {
    return !connection || connection->control() != Http::ConnectionControl::Close;
  }
  return connection && connection->control() == Http::ConnectionControl::KeepAlive;
}

class Handler final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(Handler)

  Handler(OriginService& service, WorkerPool& workers, bool access_log, HttpServer::Routes routes,
          Metrics* metrics, PendingAnswers* pending)
      : service_(&service),
        workers_(&workers),
        access_log_(access_log),
        routes_(routes),
        metrics_(metrics),
        pending_(pending) {}

  // Pistache's own onInput would call this; Thimble's (below) calls serve() directly.
  void onRequest(const Http::Request& request, Http::ResponseWriter writer) override {
    serve(request, writer.getPeer());
  }

 private:
  // Replaces Pistache 0.0.5's Http::Handler::onInput, which answers a request over
  // maxRequestSize (413) or one that does not parse (400) and then keeps the connection: the
  // rest of the refused request is read as the next requests, and every later answer on that
  // connection is one behind (a CDN's pooled connection would hand users each other's answers).
  // Here any such request is refused once, with `Connection: close`, and the connection ends.
  void onInput(const char* buffer, std::size_t len,
               const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    if (peer->tryGetData(kRefused)) return;  // closing: the refused request's rest is dropped
    auto parser = getParser(peer);
    try {
      if (!parser->feed(buffer, len)) {
        return refuse(peer, {Code::kHeadersTooLarge,
                             "the request line and headers are over server.max_request_bytes"});
      }
      if (parser->parse() != Http::Private::State::Done) return;  // more bytes to come
    } catch (const Http::HttpError& error) {
      return refuse(peer, {Code::kBadRequest, "the request is not valid HTTP: " + error.reason()});
    } catch (const std::exception&) {
      return refuse(peer, {Code::kBadRequest, "the request is not valid HTTP"});
    }
    peer->setIdle(false);
    serve(parser->request, peer);
    parser->reset();
  }

  static constexpr const char* kRefused = "thimble.refused";

  // Answers once, with Connection: close, and closes the connection when the answer is out.
  void refuse(const std::shared_ptr<Pistache::Tcp::Peer>& peer, const Status& status) {
    peer->putData(kRefused, std::make_shared<bool>(true));
    Exchange exchange = begin_exchange(peer);
    exchange.method = "-";
    exchange.path = "-";
    exchange.request_id = request_id_for("");
    exchange.keep_alive = false;
    exchange.close_after = true;  // the client reads the answer, then sees the end
    finish(exchange, service_->error(status, Route::kOther));
  }

  // A request from `peer` starts now: counted, with what finish() needs from this handler.
  Exchange begin_exchange(const std::shared_ptr<Pistache::Tcp::Peer>& peer) {
    if (metrics_) metrics_->request_started();
    Exchange exchange;
    exchange.started = SteadyClock::now();
    exchange.peer = peer;
    exchange.access_log = access_log_;
    exchange.metrics = metrics_;
    exchange.pending = pending_;
    return exchange;
  }

  void serve(const Http::Request& request, const std::shared_ptr<Pistache::Tcp::Peer>& peer) {
    // Copy out everything needed: Pistache resets `request` when this returns.
    Exchange exchange = begin_exchange(peer);
    exchange.method = Http::methodString(request.method());
    exchange.path = request.resource();
    exchange.request_id = request_id_for(header_value(request, "X-Request-Id"));
    exchange.head_only = request.method() == Http::Method::Head;
    exchange.keep_alive = wants_keep_alive(request);

    OriginRequest origin;
    origin.method = exchange.method;
    origin.path = exchange.path;
    origin.accept = accept_value(request);
    origin.if_none_match = header_value(request, "If-None-Match");
    origin.if_modified_since = header_value(request, "If-Modified-Since");
    origin.listener = routes_;
    if (const std::string name = service_->signature_header(); !name.empty()) {
      origin.signature = header_value(request, name.c_str());
    }

    auto first = service_->begin(origin);
    if (auto* response = std::get_if<OriginResponse>(&first)) {
      finish(exchange, *response);
      return;
    }
    Job job = std::get<Job>(std::move(first));
    // A storm of identical requests parks on the first: no worker, no place in the queue.
    if (service_->coalesce(
            job, [exchange](const OriginResponse& response) { finish(exchange, response); })) {
      return;
    }
    OriginService* service = service_;
    const Route route = job.route;
    // When the queue is full the job is dropped, and the requests parked on it get 503 too.
    bool queued = workers_->try_submit(
        [service, exchange, job = std::move(job)] { finish(exchange, service->run(job)); });
    if (!queued) {
      finish(exchange,
             service_->error({Code::kOverloaded, "too many requests in progress"}, route));
    }
  }

  OriginService* service_;
  WorkerPool* workers_;
  bool access_log_;
  HttpServer::Routes routes_;
  Metrics* metrics_;
  PendingAnswers* pending_;
};

bool request_id_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
         c == '/' || c == '+' || c == '=' || c == '-';
}

}  // namespace

int widen_listen_backlog(int port, int backlog) {
  int widened = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", error)) {
    int fd = -1;
    const std::string name = entry.path().filename().string();
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
    int listening = 0;
    socklen_t size = sizeof listening;
    sockaddr_storage address{};
    socklen_t address_size = sizeof address;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || !listening ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_size) != 0) {
      continue;
    }
    const int bound = address.ss_family == AF_INET
                          ? ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port)
                      : address.ss_family == AF_INET6
                          ? ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port)
                          : -1;
    if (bound == port && ::listen(fd, backlog) == 0) ++widened;
  }
  return widened;
}

std::string request_id_for(std::string_view offered) {
  if (!offered.empty() && offered.size() <= 128 &&
      std::all_of(offered.begin(), offered.end(), request_id_char)) {
    return std::string(offered);
  }
  thread_local std::mt19937_64 random{std::random_device{}()};
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(random()));
  return id;
}

std::string serialize_response(const OriginResponse& response, bool head_only, bool keep_alive,
                               std::string_view date, std::string_view request_id) {
  std::string out;
  const std::size_t body_size = response.body_size();
  out.reserve(512 + (head_only ? 0 : body_size));
  out += "HTTP/1.1 " + std::to_string(response.status) + " ";
  out += reason_phrase(response.status);
  out += "\r\nDate: ";
  out += date;
  out += "\r\nServer: thimble\r\n";
  for (const auto& [name, value] : response.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!request_id.empty()) {
    out += "X-Request-Id: ";
    out += request_id;
    out += "\r\n";
  }
  if (response.status != 304) out += "Content-Length: " + std::to_string(body_size) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!head_only && response.body && response.status != 304) out += *response.body;
  return out;
}

HttpServer::HttpServer(const conf::ServerConfig& config, std::string host, int port, Routes routes,
                       OriginService& service, WorkerPool& workers, Metrics* metrics)
    : config_(config),
      host_(std::move(host)),
      port_(port),
      routes_(routes),
      metrics_(metrics),
      service_(service),
      workers_(workers),
      pending_(std::make_unique<PendingAnswers>()) {}

HttpServer::~HttpServer() {
  shutdown();
}

Status HttpServer::start() {
  try {
    Pistache::Address address(host_, Pistache::Port(static_cast<std::uint16_t>(port_)));
    endpoint_ = std::make_unique<Http::Endpoint>(address);
    auto options =
        Http::Endpoint::options()
            .threads(config_.reactor_threads)
            .flags(Pistache::Tcp::Options::ReuseAddr | Pistache::Tcp::Options::NoDelay)
            .maxRequestSize(config_.max_request_bytes)
            // Pistache's header timer also bounds how long a request may stay unanswered. A job
            // may wait up to request_timeout for a worker and then run; the timer must outlast
            // both, or Pistache would answer 408 and drop the connection mid-transform.
            .headerTimeout(std::chrono::milliseconds(2 * config_.request_timeout_ms + 5000))
            .bodyTimeout(std::chrono::milliseconds(2 * config_.request_timeout_ms + 5000))
            .keepaliveTimeout(std::chrono::seconds(config_.keepalive_timeout_s));
    endpoint_->init(options);
    endpoint_->setHandler(Http::make_handler<Handler>(service_, workers_, config_.access_log,
                                                      routes_, metrics_, pending_.get()));
    endpoint_->serveThreaded();
    // Pistache 0.0.5 listens with a backlog of 128 whatever Endpoint::Options::backlog() says.
    widen_listen_backlog(port(), config_.listen_backlog);
  } catch (const std::exception& e) {
    endpoint_.reset();
    return Status(Code::kInternal,
                  "cannot listen on " + host_ + ":" + std::to_string(port_) + ": " + e.what());
  }
  return Status::Ok();
}

int HttpServer::port() const {
  return endpoint_ ? static_cast<std::uint16_t>(endpoint_->getPort()) : 0;
}

void HttpServer::begin_drain() {
  pending_->watch();
}

void HttpServer::shutdown(std::chrono::milliseconds flush_timeout) {
  if (endpoint_) {
    pending_->wait_written(SteadyClock::now() + flush_timeout);
    endpoint_->shutdown();
    endpoint_.reset();
  }
}

}  // namespace thimble::proxy
