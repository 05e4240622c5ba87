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
#include <memory>

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
int quiesce_listener(int port, std::chrono::milliseconds timeout);

// The request id to log and echo: the client's X-Request-Id when it is a sane token (1-128
// characters of [A-Za-z0-9._:/+=-]), else a new random one (16 hex digits).
std::string request_id_for(std::string_view offered);

}  // namespace thimble::proxy
