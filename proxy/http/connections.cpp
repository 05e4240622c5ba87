#include "proxy/http/connections.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace thimble::proxy::http {

using Clock = std::chrono::steady_clock;

void Connection::answer(std::string head, std::shared_ptr<const std::string> body, bool close) {
  std::shared_ptr<Connection> me = self.lock();
  if (!me) return;
  {
    std::lock_guard lock(mutex);
    awaiting = false;
    if (closed) return;
    out_head = std::move(head);
    out_body = std::move(body);
    out_done = 0;
    out_pending = true;
    close_after = close;
    last_progress = Clock::now();
  }
  table->advance(me);
}

ConnectionTable::ConnectionTable(ConnectionTimeouts timeouts, ParseLimits limits, Dispatch dispatch)
    : timeouts_(timeouts), limits_(limits), dispatch_(std::move(dispatch)) {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake_;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &event);
  thread_ = std::thread([this] { run(); });
}

ConnectionTable::~ConnectionTable() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_, &one, sizeof one);
  thread_.join();
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(mutex_);
    for (auto& [fd, connection] : connections_) all.push_back(connection);
  }
  for (auto& connection : all) {
    std::lock_guard lock(connection->mutex);
    close_locked(*connection);
  }
  ::close(wake_);
  ::close(epoll_);
}

std::shared_ptr<Connection> ConnectionTable::open(int fd) {
  const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return nullptr;
  auto connection = std::make_shared<Connection>();
  connection->table = this;
  connection->self = connection;
  connection->fd = own;
  connection->idle_since = Clock::now();
  std::lock_guard lock(mutex_);
  connections_[own] = connection;
  return connection;
}

void ConnectionTable::received(const std::shared_ptr<Connection>& connection, const char* data,
                               std::size_t n) {
  {
    std::lock_guard lock(connection->mutex);
    if (connection->closed || connection->half_closed) return;  // a closing one reads no more
    if (connection->input.empty()) connection->request_started = Clock::now();
    connection->input.append(data, n);
    // A client that sends far more than it lets Thimble answer is cut off.
    if (connection->input.size() > timeouts_.max_buffered_input &&
        (connection->awaiting || connection->out_pending)) {
      close_locked(*connection);
      return;
    }
  }
  advance(connection);
}

void ConnectionTable::disconnected(const std::shared_ptr<Connection>& connection) {
  {
    std::lock_guard lock(connection->mutex);
    connection->peer_gone = true;
    connection->input.clear();  // nothing more will be read: an unfinished request never ends
    if (!connection->out_pending && !connection->awaiting) close_locked(*connection);
  }
}

void ConnectionTable::advance(const std::shared_ptr<Connection>& connection) {
  Connection& c = *connection;
  std::unique_lock lock(c.mutex);
  // One thread at a time moves a connection along; a caller that finds another at it has already
  // changed what that thread will see on its next turn (both hold this lock to change it).
  if (c.advancing) return;
  c.advancing = true;
  while (!c.closed) {
    if (c.out_pending) {
      const Wrote wrote = write_some(c);
      if (wrote == Wrote::kFailed) {
        close_locked(c);
        break;
      }
      if (wrote == Wrote::kBlocked) {
        watch_writable(c);
        break;
      }
      c.out_pending = false;
      c.out_head.clear();
      c.out_body.reset();
      c.idle_since = Clock::now();
      // A pipelined request that waited behind this answer gets its whole header time.
      if (!c.input.empty()) c.request_started = c.idle_since;
      if (c.close_after) {
        // The client reads the answer, then the end; it closes, or the linger timer does.
        ::shutdown(c.fd, SHUT_WR);
        c.half_closed = true;
        c.linger_until = Clock::now() + timeouts_.linger;
        c.input.clear();
        if (c.peer_gone) close_locked(c);
        break;
      }
    }
    if (c.awaiting || c.half_closed) break;
    if (c.peer_gone) {
      close_locked(c);
      break;
    }
    if (c.input.empty()) {
      c.request_started.reset();
      break;
    }
    ParseOutcome outcome = parse_request(c.input, limits_);
    if (outcome.state == ParseOutcome::State::kIncomplete) {
      if (!c.request_started) c.request_started = Clock::now();
      break;
    }
    if (outcome.state == ParseOutcome::State::kComplete) {
      c.input.erase(0, outcome.consumed);  // what follows is the next request
    } else {
      c.input.clear();  // a refused request's answer ends the connection
    }
    c.request_started = c.input.empty() ? std::nullopt : std::optional(Clock::now());
    c.awaiting = true;
    lock.unlock();
    dispatch_(connection, std::move(outcome));
    lock.lock();
  }
  c.advancing = false;
}

ConnectionTable::Wrote ConnectionTable::write_some(Connection& c) {
  const std::size_t head = c.out_head.size();
  const std::size_t body = c.out_body ? c.out_body->size() : 0;
  while (c.out_done < head + body) {
    iovec parts[2];
    int count = 0;
    if (c.out_done < head) {
      parts[count++] = {c.out_head.data() + c.out_done, head - c.out_done};
    }
    if (body > 0) {
      const std::size_t from = c.out_done > head ? c.out_done - head : 0;
      parts[count++] = {const_cast<char*>(c.out_body->data()) + from, body - from};
    }
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = static_cast<std::size_t>(count);
    const ssize_t sent = ::sendmsg(c.fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Wrote::kBlocked;
      return Wrote::kFailed;
    }
    c.out_done += static_cast<std::size_t>(sent);
    c.last_progress = Clock::now();
  }
  return Wrote::kAll;
}

void ConnectionTable::watch_writable(Connection& c) {
  epoll_event event{};
  event.events = EPOLLOUT | EPOLLONESHOT;
  event.data.fd = c.fd;
  ::epoll_ctl(epoll_, c.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c.fd, &event);
  c.registered = true;
}

void ConnectionTable::close_locked(Connection& c) {
  if (c.closed) return;
  {
    // Out of the table before the descriptor's number can be reused by another connection.
    std::lock_guard lock(mutex_);
    connections_.erase(c.fd);
  }
  // Out of the epoll set before the descriptor goes: the socket lives on in Pistache's.
  if (c.registered) ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
  // Both directions: Pistache's reactor sees the end and lets go of its descriptor too.
  ::shutdown(c.fd, SHUT_RDWR);
  ::close(c.fd);
  c.closed = true;
  c.input.clear();
  c.out_pending = false;
  c.out_head.clear();
  c.out_body.reset();
}

void ConnectionTable::run() {
  constexpr int kTick = 100;  // ms between timer checks
  epoll_event events[64];
  auto next_check = Clock::now();
  while (true) {
    const int n = ::epoll_wait(epoll_, events, 64, kTick);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == wake_) return;
      std::shared_ptr<Connection> connection;
      {
        std::lock_guard lock(mutex_);
        auto found = connections_.find(events[i].data.fd);
        if (found != connections_.end()) connection = found->second;
      }
      if (connection) advance(connection);
    }
    if (Clock::now() >= next_check) {
      check_timers();
      next_check = Clock::now() + std::chrono::milliseconds(kTick);
    }
  }
}

void ConnectionTable::check_timers() {
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(mutex_);
    all.reserve(connections_.size());
    for (auto& [fd, connection] : connections_) all.push_back(connection);
  }
  const auto now = Clock::now();
  for (const auto& connection : all) {
    Connection& c = *connection;
    bool late_head = false;
    {
      std::lock_guard lock(c.mutex);
      if (c.closed) continue;
      if (c.half_closed) {
        if (now >= c.linger_until) close_locked(c);
      } else if (c.out_pending) {
        if (now - c.last_progress > timeouts_.write) close_locked(c);  // a reader that stopped
      } else if (c.awaiting) {
        // The answer is being made; the request's own deadline bounds that.
      } else if (c.request_started && now - *c.request_started > timeouts_.header) {
        late_head = true;  // slowloris, or a client that stalled mid-request
        c.input.clear();
        c.request_started.reset();
        c.awaiting = true;
      } else if (c.input.empty() && now - c.idle_since > timeouts_.keepalive) {
        close_locked(c);
      }
    }
    if (late_head) {
      ParseOutcome outcome;
      outcome.state = ParseOutcome::State::kRefused;
      outcome.status = 408;
      outcome.reason = "the request was not complete within server.header_timeout_ms";
      dispatch_(connection, std::move(outcome));
    }
  }
}

std::size_t ConnectionTable::writing() const {
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [fd, connection] : connections_) all.push_back(connection);
  }
  std::size_t count = 0;
  for (const auto& connection : all) {
    std::lock_guard lock(connection->mutex);
    if (connection->out_pending) ++count;
  }
  return count;
}

std::vector<int> ConnectionTable::descriptors() const {
  std::lock_guard lock(mutex_);
  std::vector<int> fds;
  for (const auto& [fd, connection] : connections_) fds.push_back(fd);
  return fds;
}

}  // namespace thimble::proxy::http
