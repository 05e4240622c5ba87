// HttpServer: the Pistache adapter. It turns each HTTP request into an OriginRequest, asks the
// OriginService for the answer (on the reactor thread when that is cheap, on the WorkerPool when
// it is not) and writes the OriginResponse back. It holds no image or storage logic.
//
// Responses are serialised here rather than through Pistache's ResponseWriter::send(), which
// always writes its own Content-Length: that makes HEAD carry the real length with no body, and
// lets every response carry exactly the headers the OriginService chose, plus an explicit
// Connection header (Pistache 0.0.5 otherwise says `Connection: Close` on keep-alive sockets).
//
// Thread-safety: start() and shutdown() from the owning thread; requests arrive on Pistache's
// reactor threads and complete on worker threads.
#pragma once

#include <chrono>
#include <memory>

#include "conf/config.h"
#include "proxy/metrics.h"
#include "proxy/origin_service.h"
#include "proxy/worker_pool.h"

namespace Pistache::Http {
class Endpoint;
}

namespace thimble::proxy {

class PendingAnswers;

class HttpServer {
 public:
  // Which routes this listener answers (decided by the OriginService).
  using Routes = Listener;

  // Listens on `host`:`port`; counts every request in `metrics` (may be null).
  HttpServer(const conf::ServerConfig& config, std::string host, int port, Routes routes,
             OriginService& service, WorkerPool& workers, Metrics* metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on background threads. Failure (e.g. port in use) is a Status.
  Status start();
  // The port actually bound (useful when the configuration asked for a specific one).
  int port() const;
  // From now on, notes the connections it answers so that shutdown() can wait for their bytes.
  void begin_drain();
  // Stops the listener and the reactor, first waiting up to `flush_timeout` until the answers
  // already handed to the reactor have been written (Pistache drops unwritten ones). In-flight
  // work should be finished before.
  void shutdown(std::chrono::milliseconds flush_timeout = std::chrono::milliseconds(0));

 private:
  const conf::ServerConfig& config_;
  std::string host_;
  int port_;
  Routes routes_;
  Metrics* metrics_;
  OriginService& service_;
  WorkerPool& workers_;
  std::unique_ptr<Pistache::Http::Endpoint> endpoint_;
  std::unique_ptr<PendingAnswers> pending_;
};

// The bytes of an HTTP/1.1 response: status line, Date, the response's headers, X-Request-Id
// (unless `request_id` is empty), Content-Length (except for 304), Connection, then the body
// unless `head_only`.
std::string serialize_response(const OriginResponse& response, bool head_only, bool keep_alive,
                               std::string_view date, std::string_view request_id = {});

// Resizes the accept queue of this process's listening sockets on `port` to `backlog` connections
// (the kernel caps it at net.core.somaxconn) by calling listen() on them again; returns how many
// it resized. A burst of new connections beyond the queue waits for the clients' SYN retry, a
// second or more.
int widen_listen_backlog(int port, int backlog);

// The request id to log and echo: the client's X-Request-Id when it is a sane token (1-128
// characters of [A-Za-z0-9._:/+=-]), else a new random one (16 hex digits).
std::string request_id_for(std::string_view offered);

}  // namespace thimble::proxy
