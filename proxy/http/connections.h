// ConnectionTable: Thimble's side of every client connection. Pistache's reactor accepts
// connections and reads their bytes; everything after that is here: the bytes received and not
// yet parsed, the one answer being written, and the timers. Why not Pistache's own write path:
// Pistache 0.0.5 retries a write that meets EAGAIN in a loop on its reactor, copying the rest of
// the buffer on each pass, so one client that never reads froze every connection (the reactor
// at 93% CPU) and two of them grew memory by gigabytes. Here:
// - each connection writes from its own descriptor (a dup of Pistache's), without blocking and
//   without copying: the answer's head, then its body shared with the result cache;
// - what the kernel does not take waits for writability on this table's own epoll thread;
// - one answer at a time per connection: a pipelined request is parsed only once the answer
//   before it is written, so a client that does not read holds one answer and its socket buffer,
//   and at most `max_buffered_input` unparsed bytes (more closes it);
// - timers: a request head must be complete `header` after its first byte (408, then close); an
//   answer that makes no progress for `write` is abandoned and its connection closed; an idle
//   keep-alive connection is closed after `keepalive`; a connection answered with
//   `Connection: close` is shut for writing at once and closed when the client has read it (or
//   after `linger`).
// The table never reads a socket and never blocks a caller on one.
//
// Thread-safety: every method may be called from any thread. Connection::answer() is called once
// per dispatched request, from whichever thread has the answer.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "proxy/http/request_parser.h"

namespace thimble::proxy::http {

struct ConnectionTimeouts {
  std::chrono::milliseconds header{15000};     // first byte of a request head → its end
  std::chrono::milliseconds write{30000};      // an answer's longest stretch without progress
  std::chrono::milliseconds keepalive{75000};  // an idle keep-alive connection
  std::chrono::milliseconds linger{2000};      // after a closing answer, for the client to close
  std::size_t max_buffered_input = 65536;      // unparsed bytes held while an answer is pending
};

class ConnectionTable;

class Connection {
 public:
  // The answer to the request dispatched last: `head` (status line and headers) then `body`
  // (null for none), written in that order; `close` ends the connection once it is written.
  void answer(std::string head, std::shared_ptr<const std::string> body, bool close);

 private:
  friend class ConnectionTable;
  using Clock = std::chrono::steady_clock;

  ConnectionTable* table = nullptr;
  std::weak_ptr<Connection> self;
  mutable std::mutex mutex;
  int fd = -1;  // Thimble's own descriptor of the socket
  bool closed = false;
  bool registered = false;  // in the table's epoll set
  bool peer_gone = false;   // Pistache has let go of the connection
  std::string input;        // received, not yet parsed
  bool awaiting = false;    // a request was dispatched and has no answer yet
  bool advancing = false;   // a thread is in ConnectionTable::advance() for it
  // The answer being written: `out_head` then `out_body`, `out_done` bytes of them so far.
  bool out_pending = false;
  std::string out_head;
  std::shared_ptr<const std::string> out_body;
  std::size_t out_done = 0;
  bool close_after = false;
  bool half_closed = false;                          // shut for writing after a closing answer
  std::optional<Clock::time_point> request_started;  // the first byte of an unfinished head
  Clock::time_point last_progress{};                 // of the answer being written
  Clock::time_point idle_since{};
  Clock::time_point linger_until{};
};

class ConnectionTable {
 public:
  // A complete request (or a refused one, whose answer must close the connection). Called
  // without any lock held; the answer may be given before it returns or later.
  using Dispatch = std::function<void(const std::shared_ptr<Connection>&, ParseOutcome)>;

  ConnectionTable(ConnectionTimeouts timeouts, ParseLimits limits, Dispatch dispatch);
  ~ConnectionTable();  // closes every connection and stops the thread
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  // A new connection on Pistache's descriptor `fd` (which stays Pistache's); null on failure.
  std::shared_ptr<Connection> open(int fd);
  // Bytes that arrived on `connection`.
  void received(const std::shared_ptr<Connection>& connection, const char* data, std::size_t n);
  // Pistache has seen the connection end (or ended it): once nothing is left to write, close it.
  void disconnected(const std::shared_ptr<Connection>& connection);

  // How many connections have an answer not yet fully handed to the kernel.
  std::size_t writing() const;
  // Descriptors of the open connections, for a drain that waits on the kernel's send queues.
  std::vector<int> descriptors() const;

 private:
  friend class Connection;
  enum class Wrote { kAll, kBlocked, kFailed };

  void advance(const std::shared_ptr<Connection>& connection);
  Wrote write_some(Connection& c);
  void close_locked(Connection& c);
  void watch_writable(Connection& c);
  void run();
  void check_timers();

  const ConnectionTimeouts timeouts_;
  const ParseLimits limits_;
  const Dispatch dispatch_;
  int epoll_ = -1;
  int wake_ = -1;  // eventfd: stop
  mutable std::mutex mutex_;
  std::unordered_map<int, std::shared_ptr<Connection>> connections_;  // by Thimble's fd
  std::thread thread_;
};

}  // namespace thimble::proxy::http
