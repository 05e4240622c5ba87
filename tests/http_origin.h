// A small HTTP/1.1 origin on 127.0.0.1 for tests: it serves canned answers by path and can
// misbehave on demand (slow, reset, endless, wrong length, redirects). One thread per connection;
// every connection is answered once and closed. Stops and joins everything when destroyed.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support.h"

namespace thimble::test {

struct OriginRequest {
  std::string path;
  std::map<std::string, std::string> headers;  // lower-case names
};

class HttpOrigin {
 public:
  // `handle` writes the whole answer on the socket (it may sleep, stop early, or never stop).
  using Handler = std::function<void(int fd, const OriginRequest& request)>;

  explicit HttpOrigin(Handler handle) : handle_(std::move(handle)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    port_ = test::bind_loopback(listener_);
    ::listen(listener_, 64);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~HttpOrigin() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    acceptor_.join();
    std::vector<std::thread> connections;
    {
      std::lock_guard lock(mutex_);  // connection threads take it too: join outside
      connections.swap(connections_);
    }
    for (auto& t : connections) t.join();
  }

  int port() const { return port_; }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int hits(const std::string& path) {
    std::lock_guard lock(mutex_);
    return hits_[path];
  }
  bool stopping() const { return stopping_; }
  // Waits (up to `limit`) until no connection is being answered.
  bool wait_idle(std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (active_ > 0) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  // Helpers for handlers.
  static bool send_all(int fd, const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  static void respond(int fd, int status, const std::string& body,
                      const std::string& extra_headers = "") {
    send_all(fd, "HTTP/1.1 " + std::to_string(status) +
                     " X\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body);
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      std::lock_guard lock(mutex_);
      connections_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    ++active_;
    serve_one(fd);
    ::close(fd);
    --active_;
  }

  void serve_one(int fd) {
    std::string data;
    char buffer[4096];
    while (data.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) return;
      data.append(buffer, static_cast<std::size_t>(n));
    }
    OriginRequest request;
    std::size_t line_end = data.find("\r\n");
    std::string line = data.substr(0, line_end);
    std::size_t first = line.find(' '), second = line.find(' ', first + 1);
    request.path = line.substr(first + 1, second - first - 1);
    for (std::size_t at = line_end + 2; at < data.size();) {
      std::size_t end = data.find("\r\n", at);
      if (end == at || end == std::string::npos) break;
      std::string header = data.substr(at, end - at);
      std::size_t colon = header.find(':');
      if (colon != std::string::npos) {
        std::string name = header.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = header.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        request.headers[name] = value;
      }
      at = end + 2;
    }
    {
      std::lock_guard lock(mutex_);
      ++hits_[request.path];
    }
    handle_(fd, request);
  }

  Handler handle_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> connections_;
  std::map<std::string, int> hits_;
};

}  // namespace thimble::test
