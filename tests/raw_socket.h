// Raw TCP for tests that must send bytes no HTTP client library would: a loopback connection,
// and an exchange that reads until the server closes it.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <string>

namespace thimble::test {

// A connected socket to 127.0.0.1:`port`, or -1.
inline int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// What arrives on `fd` until the server closes it or `quiet_ms` pass without a byte.
inline std::string read_until_closed(int fd, int quiet_ms = 10000) {
  std::string answer;
  pollfd wait{fd, POLLIN, 0};
  char buffer[4096];
  ssize_t n = 0;
  while (::poll(&wait, 1, quiet_ms) == 1 && (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) {
    answer.append(buffer, static_cast<std::size_t>(n));
  }
  return answer;
}

// Sends `request` as raw bytes on a new connection and returns all that comes back until the
// server closes it (or `quiet_ms` pass without a byte).
inline std::string raw_exchange(int port, const std::string& request, int quiet_ms = 10000) {
  const int fd = connect_loopback(port);
  if (fd < 0) return {};
  std::string answer;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    answer = read_until_closed(fd, quiet_ms);
  }
  ::close(fd);
  return answer;
}

// How many HTTP/1.1 status lines (`HTTP/1.1 NNN `) `bytes` holds.
inline std::size_t count_answers(const std::string& bytes) {
  std::size_t answers = 0;
  for (std::size_t at = bytes.find("HTTP/1.1 "); at != std::string::npos;
       at = bytes.find("HTTP/1.1 ", at + 1)) {
    const std::string status = bytes.substr(at + 9, 4);
    if (status.size() == 4 && std::isdigit(static_cast<unsigned char>(status[0])) &&
        std::isdigit(static_cast<unsigned char>(status[1])) &&
        std::isdigit(static_cast<unsigned char>(status[2])) && status[3] == ' ') {
      ++answers;
    }
  }
  return answers;
}

}  // namespace thimble::test
