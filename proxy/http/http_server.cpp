#include "proxy/http/http_server.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "proxy/common/access_log.h"
#include "proxy/common/header_policy.h"
#include "proxy/http/connections.h"

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
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace

// Everything the Pistache handler and the connection table's dispatch share; owned by the
// HttpServer, outliving both.
struct Adapter {
  OriginService* service = nullptr;
  bool access_log = true;
  HttpServer::Routes routes = HttpServer::Routes::kAll;
  Metrics* metrics = nullptr;
  std::atomic<bool> draining{false};
  std::unique_ptr<http::ConnectionTable> table;
};

namespace {

// What the adapter keeps of a request to finish it later, on whichever thread.
struct Exchange {
  std::weak_ptr<http::Connection> connection;
  std::string method;
  std::string path;
  std::string request_id;
  bool head_only = false;
  bool keep_alive = true;
  bool access_log = true;
  Metrics* metrics = nullptr;
  SteadyClock::time_point started;
};

void finish(const Exchange& exchange, const OriginResponse& response) {
  std::string head =
      serialize_head(response, exchange.keep_alive, http_date(std::chrono::system_clock::now()),
                     exchange.request_id);
  // Counted before the bytes leave, so a client that has its answer also finds it in /metrics.
  const std::chrono::duration<double> took = SteadyClock::now() - exchange.started;
  if (exchange.metrics) {
    exchange.metrics->request_finished(response.route, response.status, response.cache_outcome,
                                       took.count());
  }
  if (auto connection = exchange.connection.lock()) {
    const bool body = !exchange.head_only && response.status != 304;
    connection->answer(std::move(head), body ? response.body : nullptr, !exchange.keep_alive);
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

// A request starts now: counted, with what finish() needs.
Exchange begin_exchange(Adapter& adapter, const std::shared_ptr<http::Connection>& connection) {
  if (adapter.metrics) adapter.metrics->request_started();
  Exchange exchange;
  exchange.started = SteadyClock::now();
  exchange.connection = connection;
  exchange.access_log = adapter.access_log;
  exchange.metrics = adapter.metrics;
  return exchange;
}

Code code_for_refusal(int status) {
  switch (status) {
    case 408: return Code::kRequestTimeout;
    case 413: return Code::kRequestTooLarge;
    case 431: return Code::kHeadersTooLarge;
    case 505: return Code::kHttpVersion;
    default: return Code::kMalformedHttp;
  }
}

// A request the parser refused (or one whose head never came): one answer, then the end.
void refuse(Adapter& adapter, const std::shared_ptr<http::Connection>& connection,
            const http::ParseOutcome& outcome) {
  Exchange exchange = begin_exchange(adapter, connection);
  exchange.method = "-";
  exchange.path = "-";
  exchange.request_id = request_id_for("");
  exchange.keep_alive = false;
  const std::string message =
      outcome.status == 400 ? "the request is not valid HTTP: " + outcome.reason : outcome.reason;
  finish(exchange,
         adapter.service->error({code_for_refusal(outcome.status), message}, Route::kOther));
}

void serve(Adapter& adapter, const std::shared_ptr<http::Connection>& connection,
           const http::RequestHead& request) {
  Exchange exchange = begin_exchange(adapter, connection);
  exchange.method = request.method;
  exchange.path = request.target.substr(0, request.target.find('?'));
  exchange.request_id = request_id_for(request.header("x-request-id"));
  exchange.head_only = request.method == "HEAD";
  // While draining, answers end their connections: clients move to the other replicas.
  exchange.keep_alive = request.keep_alive && !adapter.draining.load(std::memory_order_relaxed);

  OriginRequest origin;
  origin.method = exchange.method;
  origin.path = exchange.path;
  origin.headers = request.headers;
  origin.listener = adapter.routes;
  adapter.service->submit(
      origin, [exchange](const OriginResponse& response) { finish(exchange, response); });
}

// Pistache's side: it accepts connections and reads them; the bytes go to the connection table,
// which parses, dispatches, writes and times them (proxy/http/connections.h). Pistache's own
// parser and writer are never used: its peers are kept idle, so its header timer never answers
// for Thimble, and its parser is only reset on each read, which tells Pistache's keep-alive
// timer the connection is in use.
class Handler final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(Handler)

  explicit Handler(Adapter* adapter) : adapter_(adapter) {}

  void onRequest(const Http::Request&, Http::ResponseWriter) override {}

  void onInput(const char* buffer, std::size_t len,
               const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    std::shared_ptr<http::Connection> connection = connection_of(peer);
    if (!connection) {
      connection = adapter_->table->open(peer->fd());
      if (!connection) return;
      peer->putData(kConnection, connection);
      peer->setIdle(true);
    }
    getParser(peer)->reset();  // Pistache's keep-alive clock: this connection is in use
    adapter_->table->received(connection, buffer, len);
  }

  void onDisconnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    if (std::shared_ptr<http::Connection> connection = connection_of(peer)) {
      adapter_->table->disconnected(connection);
    }
  }

 private:
  static constexpr const char* kConnection = "thimble.connection";

  static std::shared_ptr<http::Connection> connection_of(
      const std::shared_ptr<Pistache::Tcp::Peer>& peer) {
    return std::static_pointer_cast<http::Connection>(peer->tryGetData(kConnection));
  }

  Adapter* adapter_;
};

bool request_id_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
         c == '/' || c == '+' || c == '=' || c == '-';
}

}  // namespace

namespace {

// This process's open descriptors: from /proc/self/fd, else (a process that changed its user is
// not dumpable, and its /proc/self/fd is not its own to read: a container's non-root user, setpriv)
// every number below the descriptor limit.
std::vector<int> open_descriptors() {
  std::vector<int> fds;
  std::error_code error;
  for (std::filesystem::directory_iterator entries("/proc/self/fd", error), end;
       !error && entries != end; entries.increment(error)) {
    int fd = -1;
    const std::string name = entries->path().filename().string();
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec == std::errc()) {
      fds.push_back(fd);
    }
  }
  if (!fds.empty()) return fds;
  rlimit limit{};
  const rlim_t highest =
      ::getrlimit(RLIMIT_NOFILE, &limit) == 0 ? std::min<rlim_t>(limit.rlim_cur, 1 << 20) : 1024;
  for (int fd = 0; fd < static_cast<int>(highest); ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) fds.push_back(fd);
  }
  return fds;
}

// Calls `each` with every listening socket of this process bound to `port`; returns how many.
int for_each_listener(int port, const std::function<void(int fd)>& each) {
  int found = 0;
  for (const int fd : open_descriptors()) {
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
    if (bound == port) {
      each(fd);
      ++found;
    }
  }
  return found;
}

}  // namespace

int widen_listen_backlog(int port, int backlog) {
  int widened = 0;
  for_each_listener(port, [&](int fd) {
    if (::listen(fd, backlog) == 0) ++widened;
  });
  return widened;
}

int quiesce_listener(int port, std::chrono::milliseconds timeout) {
  // A filter that drops SYNs (and keeps every other segment): no new connection is begun, while
  // the handshakes already under way complete and join the accept queue. A client whose SYN is
  // dropped tries again after a second, when the listener is closed: it is refused. The filter
  // sees the TCP header at offset 0; byte 13 holds the flags (SYN = 0x02).
  static sock_filter drop_syn[] = {
      {BPF_LD | BPF_B | BPF_ABS, 0, 0, 13},
      {BPF_JMP | BPF_JSET | BPF_K, 0, 1, 0x02},
      {BPF_RET | BPF_K, 0, 0, 0},
      {BPF_RET | BPF_K, 0, 0, 0xFFFFFFFF},
  };
  static const sock_fprog program = {4, drop_syn};
  std::vector<int> listeners;
  // Without the filter (attaching one needs privileges where unprivileged BPF is disabled, as
  // in Debian's default), an accept queue of one: beyond it the kernel drops SYNs too, so the
  // clients back off a second while the connections already made are answered.
  const int found = for_each_listener(port, [&](int fd) {
    if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) == 0 ||
        ::listen(fd, 0) == 0) {
      listeners.push_back(fd);
    } else {
      log_line("warning", "port " + std::to_string(port) +
                              ": new connections cannot be held off while closing (" +
                              std::strerror(errno) + ")");
    }
  });
  if (found == 0) {
    log_line("warning", "port " + std::to_string(port) + ": no listening socket found to close");
  }
  // For a listening socket, TCP_INFO's unacked is its accept queue: wait until it is empty.
  const auto until = std::chrono::steady_clock::now() + timeout;
  int waiting = 0;
  do {
    waiting = 0;
    for (int fd : listeners) {
      tcp_info info{};
      socklen_t size = sizeof info;
      if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) == 0) {
        waiting += static_cast<int>(info.tcpi_unacked);
      }
    }
    if (waiting == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  } while (std::chrono::steady_clock::now() < until);
  return waiting;
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

std::string serialize_head(const OriginResponse& response, bool keep_alive, std::string_view date,
                           std::string_view request_id) {
  std::string out;
  out.reserve(512);
  out += "HTTP/1.1 " + std::to_string(response.status) + " ";
  out += reason_phrase(response.status);
  out += "\r\nDate: ";
  out += date;
  out += "\r\nServer: thimble\r\n";
  for (const auto& [name, value] : response.headers) {
    // No value Thimble writes may end a header line: such a header is dropped, never sent.
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) continue;
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
  if (response.status != 304)
    out += "Content-Length: " + std::to_string(response.body_size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return out;
}

HttpServer::HttpServer(const conf::ServerConfig& config, std::string host, int port, Routes routes,
                       OriginService& service, Metrics* metrics)
    : config_(config), host_(std::move(host)), port_(port), adapter_(std::make_unique<Adapter>()) {
  adapter_->service = &service;
  adapter_->access_log = config.access_log;
  adapter_->routes = routes;
  adapter_->metrics = metrics;
}

HttpServer::~HttpServer() {
  shutdown();
}

Status HttpServer::start() {
  try {
    http::ConnectionTimeouts timeouts;
    timeouts.header = std::chrono::milliseconds(config_.header_timeout_ms);
    timeouts.write = std::chrono::milliseconds(config_.write_timeout_ms);
    timeouts.keepalive = std::chrono::seconds(config_.keepalive_timeout_s);
    timeouts.max_buffered_input = 4 * config_.max_request_bytes;
    http::ParseLimits limits;
    limits.max_head_bytes = config_.max_request_bytes;
    limits.max_body_bytes = config_.max_request_bytes;
    Adapter* adapter = adapter_.get();
    adapter_->table = std::make_unique<http::ConnectionTable>(
        timeouts, limits,
        [adapter](const std::shared_ptr<http::Connection>& connection, http::ParseOutcome outcome) {
          if (outcome.state == http::ParseOutcome::State::kComplete) {
            serve(*adapter, connection, outcome.head);
          } else {
            refuse(*adapter, connection, outcome);
          }
        });

    Pistache::Address address(host_, Pistache::Port(static_cast<std::uint16_t>(port_)));
    endpoint_ = std::make_unique<Http::Endpoint>(address);
    auto options =
        Http::Endpoint::options()
            .threads(config_.reactor_threads)
            .flags(Pistache::Tcp::Options::ReuseAddr | Pistache::Tcp::Options::NoDelay)
            // Pistache's timers only see connections before their first byte (after it they
            // are idle to Pistache): one that never sends is answered 408 and closed after the
            // header timeout; an idle one is closed after the keep-alive timeout.
            .headerTimeout(std::chrono::milliseconds(config_.header_timeout_ms))
            .bodyTimeout(std::chrono::milliseconds(config_.header_timeout_ms))
            .keepaliveTimeout(std::chrono::seconds(config_.keepalive_timeout_s));
    endpoint_->init(options);
    endpoint_->setHandler(Http::make_handler<Handler>(adapter));
    endpoint_->serveThreaded();
    // Pistache 0.0.5 listens with a backlog of 128 whatever Endpoint::Options::backlog() says.
    widen_listen_backlog(port(), config_.listen_backlog);
  } catch (const std::exception& e) {
    endpoint_.reset();
    adapter_->table.reset();
    return Status(Code::kInternal,
                  "cannot listen on " + host_ + ":" + std::to_string(port_) + ": " + e.what());
  }
  return Status::Ok();
}

int HttpServer::port() const {
  return endpoint_ ? static_cast<std::uint16_t>(endpoint_->getPort()) : 0;
}

void HttpServer::begin_drain() {
  adapter_->draining.store(true);
}

void HttpServer::shutdown(std::chrono::milliseconds flush_timeout) {
  if (!endpoint_) return;
  // Every answer handed over is written before the listener and its connections go: until no
  // answer is waiting for the socket and the kernel has sent what it took (bounded).
  // No connection is taken any more, and those the kernel already made are accepted: closing a
  // listener resets the connections still in its queue, whose requests would go unanswered.
  const auto deadline = SteadyClock::now() + flush_timeout;
  const int not_accepted = quiesce_listener(port(), flush_timeout / 2);
  // Then every request read or arriving on an open connection is answered (503 while draining,
  // and the connection closed) and written out: until the connections are quiet for 50 ms (a
  // request sent just after its connection was made has arrived by then), within the timeout.
  int quiet_polls = 0;
  while (SteadyClock::now() < deadline && quiet_polls < 5) {
    const std::vector<int> open = adapter_->table->descriptors();
    bool busy = adapter_->table->writing() > 0;
    for (int fd : open) {
      int unsent = 0, unread = 0;
      if (!busy && ::ioctl(fd, SIOCOUTQ, &unsent) == 0 && unsent > 0) busy = true;
      if (!busy && ::ioctl(fd, SIOCINQ, &unread) == 0 && unread > 0) busy = true;
    }
    if (open.empty() && !busy) break;
    quiet_polls = busy ? 0 : quiet_polls + 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::size_t still_open = adapter_->table->descriptors().size();
  if (not_accepted > 0 || still_open > 0) {
    log_line("info", "closing port " + std::to_string(port()) + " with " +
                         std::to_string(still_open) + " connections open and " +
                         std::to_string(not_accepted) + " not yet accepted");
  }
  endpoint_->shutdown();
  endpoint_.reset();
  adapter_->table.reset();
}

}  // namespace thimble::proxy
