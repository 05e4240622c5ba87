// HttpServer: the HTTP adapter. Pistache listens, accepts and reads; Thimble's connection table
// (proxy/http/) parses each request strictly, writes each answer without blocking anyone, and
// keeps the timers. Each request becomes an OriginRequest handed to OriginService::submit(), and
// the OriginResponse it completes with (on the reactor or on a worker thread) is written back.
// It holds no image or storage logic.
//
// Answers are serialised here, never by Pistache's ResponseWriter: every response carries exactly
// the headers the OriginService chose, the real Content-Length (HEAD included) and an explicit
// Connection header, and a `Connection: close` (or HTTP/1.0) answer ends its connection.
//
// Thread-safety: start() and shutdown() from the owning thread; requests arrive on Pistache's
// reactor threads and complete on worker threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "conf/config.h"
#include "proxy/common/metrics.h"
#include "proxy/service/origin_service.h"

namespace Pistache::Http {
class Endpoint;
}

namespace thimble::proxy {

struct Adapter;

class HttpServer {
 public:
  // Which routes this listener answers (decided by the OriginService).
  using Routes = Listener;

  // Listens on `host`:`port`; counts every request in `metrics` (may be null).
  HttpServer(const conf::ServerConfig& config, std::string host, int port, Routes routes,
             OriginService& service, Metrics* metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on background threads. Failure (e.g. port in use) is a Status.
  Status start();
  // The port actually bound (useful when the configuration asked for a specific one).
  int port() const;
  // From now on every answer ends its connection (clients go to the other replicas).
  void begin_drain();
  // Stops the listener and the reactor and closes every connection, first waiting up to
  // `flush_timeout` until the answers already given have been written and sent. In-flight work
  // should be finished before.
  void shutdown(std::chrono::milliseconds flush_timeout = std::chrono::milliseconds(0));

 private:
  // One connection accepted after Pistache stopped: its request read, answered through the
  // service like any other while draining, and the connection closed (all within `deadline`).
  void answer_last(int fd, std::chrono::steady_clock::time_point deadline);

  const conf::ServerConfig& config_;
  std::string host_;
  int port_;
  std::unique_ptr<Adapter> adapter_;
  std::unique_ptr<Pistache::Http::Endpoint> endpoint_;
};

// The head of an HTTP/1.1 response: status line, Date, the response's headers (any whose value
// holds CR, LF or NUL is dropped), X-Request-Id (unless `request_id` is empty), Content-Length
// (the body's, also for HEAD, whose body is then not sent; none for 304) and Connection.
std::string serialize_head(const OriginResponse& response, bool keep_alive, std::string_view date,
                           std::string_view request_id = {});

// Resizes the accept queue of this process's listening sockets on `port` to `backlog` connections
// (the kernel caps it at net.core.somaxconn) by calling listen() on them again; returns how many
// it resized. A burst of new connections beyond the queue waits for the clients' SYN retry, a
// second or more.
int widen_listen_backlog(int port, int backlog);

// Before a listener closes: new connections to `port` are no longer made (their SYNs are dropped,
// so clients retry and find it closed), and those already in its accept queue are left to be
// accepted, for at most `timeout`. Returns how many were still queued (0: none is reset).
// `unfiltered`, when given, gets the listeners no filter could be attached to, for
// plug_listener(); without it they are shrunk to a queue of one instead.
int quiesce_listener(int port, std::chrono::milliseconds timeout,
                     std::vector<int>* unfiltered = nullptr);

// Takes `fd` (a listening socket) out of every epoll set of this process that watches it: the
// acceptor of its server stops accepting from it. Returns whether one did.
bool stop_watching(int fd);

// Handshakes to `port` the kernel has answered that wait for room in an accept queue (SYN_RECV),
// from the socket diagnostics (what `ss state syn-recv` reads; no privilege needed), or -1 when
// the kernel does not tell.
int half_open_handshakes(int port);

// Where no socket filter holds SYNs off, a listening socket `fd` (a descriptor of its own, that
// no acceptor watches any more) is made ready to close without resetting a connection a client
// has made. A connection of this function's own, the plug, joins the queue behind all others,
// and the queue shrinks to one (listen(fd, 0)): full from then on, the kernel drops every SYN
// (clients retry and find the port closed). The connections ahead of the plug are taken, and
// handshakes answered just before the queue filled (SYN_RECV) are let in, until the plug is
// alone in the queue and no handshake waits. Each connection taken is then handed to `answer`
// (which answers it and closes it). Closing `fd` later resets the plug alone. Gives up at
// `deadline` (`plug` is then -1).
struct Plugged {
  int plug = -1;     // the plug's descriptor, to close after `fd`
  int answered = 0;  // connections handed to `answer`
  int rounds = 0;    // times the plug went in (more than one: handshakes were let in)
};
Plugged plug_listener(int fd, const std::function<void(int fd)>& answer,
                      std::chrono::steady_clock::time_point deadline);

// The request id to log and echo: the client's X-Request-Id when it is a sane token (1-128
// characters of [A-Za-z0-9._:/+=-]), else a new random one (16 hex digits).
std::string request_id_for(std::string_view offered);

}  // namespace thimble::proxy
