// moto_server (the S3-compatible test server in the machine image) started on a free loopback
// port for one test and stopped after it, plus the few signed calls tests need to set it up.
#pragma once

#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "http_client.h"
#include "support.h"

namespace thimble::test {

inline std::string xml_value(const std::string& xml, const std::string& tag) {
  const std::size_t open = xml.find("<" + tag + ">");
  const std::size_t close = xml.find("</" + tag + ">");
  if (open == std::string::npos || close == std::string::npos) return {};
  return xml.substr(open + tag.size() + 2, close - open - tag.size() - 2);
}

class MotoServer {
 public:
  MotoServer() {
    port_ = free_port();
    REQUIRE_MESSAGE(std::system("command -v moto_server > /dev/null") == 0,
                    "moto_server is missing: it is part of this machine image (Python moto)");
    const pid_t parent = getpid();
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      end_with_parent(SIGKILL, parent);
      FILE* out = freopen("/dev/null", "w", stdout);
      if (out) dup2(fileno(stdout), fileno(stderr));
      const std::string port = std::to_string(port_);
      execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", port.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 300; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (http_call("GET", endpoint() + "/moto-api/").status == 200) return;
    }
    FAIL("moto_server did not start on port " << port_);
  }
  ~MotoServer() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  MotoServer(const MotoServer&) = delete;
  MotoServer& operator=(const MotoServer&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void create_bucket(const std::string& bucket) {
    REQUIRE(http_call("PUT", endpoint() + "/" + bucket, "", "s3").status == 200);
  }
  // `key` already AWS-encoded.
  void put(const std::string& bucket, const std::string& encoded_key, const std::string& body) {
    // Not curl's default form content type: moto would parse the body as a form and store nothing.
    REQUIRE(http_call("PUT", endpoint() + "/" + bucket + "/" + encoded_key, body, "s3", "test:test",
                      "application/octet-stream")
                .status == 200);
  }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace thimble::test
