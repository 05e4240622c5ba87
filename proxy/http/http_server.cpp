#include "proxy/http/http_server.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
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

// What the service is asked for a request read on this adapter's listener.
OriginRequest origin_request(const Adapter& adapter, const http::RequestHead& request) {
  OriginRequest origin;
  origin.method = request.method;
  origin.path = request.target.substr(0, request.target.find('?'));
  origin.headers = request.headers;
  origin.listener = adapter.routes;
  return origin;
}

void serve(Adapter& adapter, const std::shared_ptr<http::Connection>& connection,
           const http::RequestHead& request) {
  Exchange exchange = begin_exchange(adapter, connection);
  exchange.method = request.method;
  exchange.request_id = request_id_for(request.header("x-request-id"));
  exchange.head_only = request.method == "HEAD";
  // While draining, answers end their connections: clients move to the other replicas.
  exchange.keep_alive = request.keep_alive && !adapter.draining.load(std::memory_order_relaxed);

  const OriginRequest origin = origin_request(adapter, request);
  exchange.path = origin.path;
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

// The accept queue of a listening socket (TCP_INFO's unacked), or -1.
int accept_queue(int fd) {
  tcp_info info{};
  socklen_t size = sizeof info;
  return ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) == 0
             ? static_cast<int>(info.tcpi_unacked)
             : -1;
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

int quiesce_listener(int port, std::chrono::milliseconds timeout, std::vector<int>* unfiltered) {
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
  // in Debian's default) the caller takes the listener over (`unfiltered`, plug_listener), or
  // else it gets an accept queue of one: beyond it the kernel drops SYNs too, so the clients
  // back off a second while the connections already made are answered.
  const int found = for_each_listener(port, [&](int fd) {
    if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) == 0) {
      listeners.push_back(fd);
    } else if (unfiltered) {
      unfiltered->push_back(fd);
    } else if (::listen(fd, 0) == 0) {
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
    for (int fd : listeners) waiting += std::max(0, accept_queue(fd));
    if (waiting == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  } while (std::chrono::steady_clock::now() < until);
  return waiting;
}

namespace {

bool established(int fd) {
  tcp_info info{};
  socklen_t size = sizeof info;
  return ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) == 0 &&
         info.tcpi_state == TCP_ESTABLISHED;
}

bool same_endpoint(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
    return x.sin6_port == y.sin6_port &&
           std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
  }
  return false;
}

}  // namespace

int half_open_handshakes(int port) {
  int count = 0;
  for (const std::uint8_t family : {AF_INET, AF_INET6}) {
    const int diag = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (diag < 0) return -1;
    struct {
      nlmsghdr header;
      inet_diag_req_v2 request;
    } ask{};
    ask.header.nlmsg_len = sizeof ask;
    ask.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    ask.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    ask.request.sdiag_family = family;
    ask.request.sdiag_protocol = IPPROTO_TCP;
    ask.request.idiag_states = 1U << TCP_SYN_RECV;
    ask.request.id.idiag_sport = htons(static_cast<std::uint16_t>(port));
    if (::send(diag, &ask, sizeof ask, 0) != static_cast<ssize_t>(sizeof ask)) {
      ::close(diag);
      return -1;
    }
    char buffer[16384];
    bool more = true;
    while (more) {
      pollfd ready{diag, POLLIN, 0};
      const ssize_t got = ::poll(&ready, 1, 100) == 1 ? ::recv(diag, buffer, sizeof buffer, 0) : -1;
      if (got <= 0) {
        ::close(diag);
        return -1;
      }
      // NLMSG_OK and NLMSG_NEXT, without their C casts.
      const auto aligned = [](std::size_t n) {
        return (n + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
      };
      const std::size_t size = static_cast<std::size_t>(got);
      for (std::size_t at = 0; at + sizeof(nlmsghdr) <= size;) {
        nlmsghdr header;
        std::memcpy(&header, buffer + at, sizeof header);
        if (header.nlmsg_len < sizeof header || at + header.nlmsg_len > size) break;
        if (header.nlmsg_type == NLMSG_DONE || header.nlmsg_type == NLMSG_ERROR) {
          more = false;
          break;
        }
        const std::size_t data = at + aligned(sizeof header);
        if (data + sizeof(inet_diag_msg) <= at + header.nlmsg_len) {
          inet_diag_msg socket;
          std::memcpy(&socket, buffer + data, sizeof socket);
          if (ntohs(socket.id.idiag_sport) == port) ++count;
        }
        at += aligned(header.nlmsg_len);
      }
    }
    ::close(diag);
  }
  return count;
}

bool stop_watching(int fd) {
  // Which descriptor is the acceptor's epoll set is not Pistache's to tell: ask each descriptor
  // to drop `fd` (EINVAL from every one that is not an epoll set, ENOENT from sets without it).
  bool found = false;
  for (const int candidate : open_descriptors()) {
    if (candidate != fd && ::epoll_ctl(candidate, EPOLL_CTL_DEL, fd, nullptr) == 0) found = true;
  }
  return found;
}

Plugged plug_listener(int fd, const std::function<void(int fd)>& answer,
                      SteadyClock::time_point deadline) {
  Plugged result;
  // The address the plug connects to: the listener's own, through loopback when it listens on
  // every address.
  sockaddr_storage target{};
  socklen_t target_size = sizeof target;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&target), &target_size);
  if (target.ss_family == AF_INET) {
    auto& v4 = reinterpret_cast<sockaddr_in&>(target);
    if (v4.sin_addr.s_addr == htonl(INADDR_ANY)) v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else if (target.ss_family == AF_INET6) {
    auto& v6 = reinterpret_cast<sockaddr_in6&>(target);
    if (IN6_IS_ADDR_UNSPECIFIED(&v6.sin6_addr)) v6.sin6_addr = in6addr_loopback;
  }
  const int port =
      ntohs(target.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(target).sin6_port
                                         : reinterpret_cast<const sockaddr_in&>(target).sin_port);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);

  int plug = -1;
  sockaddr_storage plug_address{};
  SteadyClock::time_point plug_started;
  std::vector<sockaddr_storage> old_plugs;  // given up, perhaps still queued
  const auto connect_plug = [&]() {
    plug = ::socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (plug < 0) return;
    ::connect(plug, reinterpret_cast<const sockaddr*>(&target), target_size);
    socklen_t size = sizeof plug_address;
    ::getsockname(plug, reinterpret_cast<sockaddr*>(&plug_address), &size);
    plug_started = SteadyClock::now();
  };
  const auto drop_plug = [&]() {
    if (plug < 0) return;
    old_plugs.push_back(plug_address);
    ::close(plug);
    plug = -1;
  };
  // Connections taken from the queue, answered once the plug is in (the clients behind them wait).
  std::vector<int> queued;
  const auto take = [&]() {
    sockaddr_storage peer{};
    socklen_t peer_size = sizeof peer;
    const int accepted =
        ::accept4(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size, SOCK_CLOEXEC);
    if (accepted < 0) return false;
    const auto ours = [&](const sockaddr_storage& a) { return same_endpoint(peer, a); };
    if (plug >= 0 && ours(plug_address)) {
      ::close(accepted);  // the plug was not the newest: plug again
      ::close(plug);
      plug = -1;
    } else if (std::any_of(old_plugs.begin(), old_plugs.end(), ours)) {
      ::close(accepted);
    } else {
      queued.push_back(accepted);
    }
    return true;
  };
  // Takes what the queue holds, oldest first, until the plug alone is left in it.
  const auto plug_in = [&]() {
    while (SteadyClock::now() < deadline) {
      if (plug >= 0 && established(plug)) {
        const int waiting = accept_queue(fd);
        if (waiting == 1) return true;  // the plug, behind everything taken
        if (waiting > 1) {
          take();
          continue;
        }
        drop_plug();  // its handshake met a full queue: it is not in it
      } else if (plug >= 0) {
        // A SYN that met a full queue would wait a second for its retry: send another.
        if (SteadyClock::now() - plug_started < std::chrono::milliseconds(5)) {
          std::this_thread::sleep_for(std::chrono::microseconds(100));
          continue;
        }
        drop_plug();
      }
      while (take()) {
      }
      connect_plug();  // sent after the last connection taken
      if (plug < 0) return false;
    }
    return false;
  };

  bool done = false;
  while (!done && SteadyClock::now() < deadline) {
    ++result.rounds;
    // The plug first, while the queue is still long: it joins behind every connection already
    // made (on loopback its handshake is over when connect() returns). Then the queue shrinks to
    // one, so it is full from then on and the kernel drops every SYN.
    ::listen(fd, SOMAXCONN);
    connect_plug();
    ::listen(fd, 0);
    if (!plug_in()) break;
    // A client whose handshake was answered just before the queue filled believes it is
    // connected, but waits for room in the queue (SYN_RECV): closing would reset it. Then the
    // queue is long again until those are in, and taken, and the plug goes in anew.
    if (half_open_handshakes(port) <= 0) {
      done = true;
      break;
    }
    ::listen(fd, SOMAXCONN);
    drop_plug();
    const auto breath = std::min(deadline, SteadyClock::now() + std::chrono::milliseconds(600));
    while (SteadyClock::now() < breath) {
      while (take()) {
      }
      if (half_open_handshakes(port) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    while (take()) {
    }
  }
  if (!done) drop_plug();
  result.plug = plug;
  result.answered = static_cast<int>(queued.size());
  for (const int connection : queued) answer(connection);
  return result;
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
  std::vector<int> unfiltered;
  const int not_accepted = quiesce_listener(port(), flush_timeout / 2, &unfiltered);
  // Where no filter holds SYNs off, Pistache's acceptor stops watching the listener and Thimble
  // takes it over (a copy of the descriptor, which outlives Pistache's): the connections still
  // queued are answered here, and the queue is plugged until the end (plug_listener).
  struct Held {
    int fd = -1;
    int plug = -1;
  };
  std::vector<Held> held;
  int late = 0, rounds = 0;
  const auto plug_until = std::max(deadline, SteadyClock::now() + std::chrono::milliseconds(200));
  for (int fd : unfiltered) {
    Held copy;
    copy.fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy.fd < 0) continue;
    if (!stop_watching(fd)) {
      log_line("warning", "port " + std::to_string(port_) + ": the acceptor could not be stopped");
    }
    const Plugged plugged = plug_listener(
        copy.fd, [&](int connection) { answer_last(connection, plug_until); }, plug_until);
    copy.plug = plugged.plug;
    late += plugged.answered;
    rounds += plugged.rounds;
    if (copy.plug < 0) {
      log_line("warning", "port " + std::to_string(port_) +
                              ": new connections could not be held off while closing");
    }
    held.push_back(copy);
  }
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
  if (not_accepted > 0 || still_open > 0 || late > 0) {
    log_line("info", "closing port " + std::to_string(port_) + " with " +
                         std::to_string(still_open) + " connections open, " +
                         std::to_string(not_accepted) + " not yet accepted and " +
                         std::to_string(late) + " answered after the acceptor stopped" +
                         (rounds > 1 ? " (plugged in " + std::to_string(rounds) + " rounds)" : ""));
  }
  endpoint_->shutdown();
  endpoint_.reset();
  // Closing a plugged listener resets its plug, and no one else.
  for (const Held& copy : held) {
    ::close(copy.fd);
    if (copy.plug >= 0) ::close(copy.plug);
  }
  adapter_->table.reset();
}

void HttpServer::answer_last(int fd, SteadyClock::time_point deadline) {
  const auto left = [&] {
    return static_cast<int>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now())
               .count()));
  };
  http::ParseLimits limits;
  limits.max_head_bytes = config_.max_request_bytes;
  limits.max_body_bytes = config_.max_request_bytes;
  std::string input;
  http::ParseOutcome outcome;
  char buffer[4096];
  while (outcome.state == http::ParseOutcome::State::kIncomplete && left() > 0) {
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, left()) <= 0) break;
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    if (got <= 0) break;
    input.append(buffer, static_cast<std::size_t>(got));
    outcome = http::parse_request(input, limits);
  }
  OriginResponse response;
  std::string request_id = request_id_for("");
  if (outcome.state == http::ParseOutcome::State::kComplete) {
    request_id = request_id_for(outcome.head.header("x-request-id"));
    const OriginRequest origin = origin_request(*adapter_, outcome.head);
    // While draining the service answers at once: from memory, or 503.
    struct Pending {
      std::mutex mutex;
      std::condition_variable done;
      std::optional<OriginResponse> response;
    };
    auto pending = std::make_shared<Pending>();
    adapter_->service->submit(origin, [pending](const OriginResponse& answer) {
      std::lock_guard lock(pending->mutex);
      pending->response = answer;
      pending->done.notify_all();
    });
    std::unique_lock lock(pending->mutex);
    pending->done.wait_until(lock, deadline, [&] { return pending->response.has_value(); });
    response = pending->response
                   ? *pending->response
                   : adapter_->service->error({Code::kOverloaded, "the server is shutting down"},
                                              Route::kOther);
  } else if (outcome.state == http::ParseOutcome::State::kRefused) {
    response =
        adapter_->service->error({code_for_refusal(outcome.status), outcome.reason}, Route::kOther);
  }
  if (response.status != 0) {
    std::string out =
        serialize_head(response, false, http_date(std::chrono::system_clock::now()), request_id);
    const bool head_only =
        outcome.state == http::ParseOutcome::State::kComplete && outcome.head.method == "HEAD";
    if (response.body && response.status != 304 && !head_only) out += *response.body;
    std::size_t sent = 0;
    while (sent < out.size() && left() > 0) {
      pollfd ready{fd, POLLOUT, 0};
      if (::poll(&ready, 1, left()) <= 0) break;
      const ssize_t wrote = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (wrote <= 0) break;
      sent += static_cast<std::size_t>(wrote);
    }
  }
  // The client reads the answer and closes; unread bytes at close() would reset it instead.
  ::shutdown(fd, SHUT_WR);
  while (left() > 0) {
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, std::min(left(), 1000)) <= 0) break;
    if (::recv(fd, buffer, sizeof buffer, 0) <= 0) break;
  }
  ::close(fd);
}

}  // namespace thimble::proxy
