// The S3-compatible server an S3 test runs against, started on a free loopback port for that test
// and stopped after it, plus the few signed calls tests need to set it up.
//
// Two servers can play it:
// - moto_server (Python's moto, in this machine image), which can check every SigV4 signature;
// - s3rver (npm, installed from tests/s3rver into the build by its CTest fixture), for a Debian 12
//   without moto. It accepts any well-formed SigV4 signature from its one key pair, so the tests
//   that need signatures checked are skipped on it (`skip_without_signature_checks`).
// THIMBLE_S3_SERVER=moto|s3rver chooses; unset, moto where it is found, else s3rver.
#pragma once

#include <curl/curl.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "http_client.h"
#include "support.h"

#ifndef THIMBLE_S3RVER_DIR
#define THIMBLE_S3RVER_DIR ""
#endif

namespace thimble::test {

inline std::string xml_value(const std::string& xml, const std::string& tag) {
  const std::size_t open = xml.find("<" + tag + ">");
  const std::size_t close = xml.find("</" + tag + ">");
  if (open == std::string::npos || close == std::string::npos) return {};
  return xml.substr(open + tag.size() + 2, close - open - tag.size() - 2);
}

enum class S3ServerKind { moto, s3rver };

inline bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string rest = path ? path : "";
  while (!rest.empty()) {
    const std::size_t colon = rest.find(':');
    const std::string dir = rest.substr(0, colon);
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    if (colon == std::string::npos) break;
    rest.erase(0, colon + 1);
  }
  return false;
}

inline S3ServerKind s3_server_kind() {
  static const S3ServerKind kind = [] {
    const char* chosen = std::getenv("THIMBLE_S3_SERVER");
    if (chosen && std::string(chosen) == "s3rver") return S3ServerKind::s3rver;
    if (chosen && std::string(chosen) == "moto") return S3ServerKind::moto;
    return on_path("moto_server") ? S3ServerKind::moto : S3ServerKind::s3rver;
  }();
  return kind;
}

// For the tests that need a server checking signatures: true, after printing the line CTest reports
// as a skip (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), when the server is s3rver; the test
// then returns. A skipped case shows in CTest's summary by name, never as passed.
inline bool skip_without_signature_checks() {
  if (s3_server_kind() == S3ServerKind::moto) return false;
  std::printf(
      "thimble-test-skipped: s3rver accepts any well-formed signature; this case needs an S3 "
      "server that checks them (moto_server)\n");
  std::fflush(stdout);
  return true;
}

inline std::string s3rver_script() {
  const char* dir = std::getenv("THIMBLE_S3RVER_DIR");
  const std::string base = dir && *dir ? dir : THIMBLE_S3RVER_DIR;
  return base + "/node_modules/s3rver/bin/s3rver.js";
}

class S3Server {
 public:
  S3Server() : kind_(s3_server_kind()) {
    port_ = free_port();
    if (kind_ == S3ServerKind::moto) {
      REQUIRE_MESSAGE(
          on_path("moto_server"),
          "moto_server is missing (Python's moto); THIMBLE_S3_SERVER=s3rver uses s3rver");
    } else {
      REQUIRE_MESSAGE(std::filesystem::exists(s3rver_script()),
                      "s3rver is not installed at "
                          << s3rver_script() << " (CTest's s3rver_install fixture puts it there)");
      data_ = std::make_unique<TempDir>();
    }
    const pid_t parent = getpid();
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      end_with_parent(SIGKILL, parent);
      FILE* out = freopen("/dev/null", "w", stdout);
      if (out) dup2(fileno(stdout), fileno(stderr));
      const std::string port = std::to_string(port_);
      if (kind_ == S3ServerKind::moto) {
        execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", port.c_str(), nullptr);
      } else {
        // s3rver's continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider.
        const std::string script = s3rver_script();
        const std::string data = data_->path().string();
        execlp("node", "node", "--openssl-legacy-provider", script.c_str(), "-d", data.c_str(),
               "-a", "127.0.0.1", "-p", port.c_str(), "--no-vhost-buckets", "-s", nullptr);
      }
      _exit(127);
    }
    for (int i = 0; i < 300; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (ready()) return;
    }
    FAIL("the S3 server (" << name() << ") did not start on port " << port_);
  }
  ~S3Server() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;

  S3ServerKind kind() const { return kind_; }
  const char* name() const { return kind_ == S3ServerKind::moto ? "moto_server" : "s3rver"; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The key pair the server accepts: any for moto (until it checks), s3rver's one.
  std::string access_key_id() const { return kind_ == S3ServerKind::moto ? "test" : "S3RVER"; }
  std::string secret_access_key() const { return access_key_id(); }
  std::string credentials() const { return access_key_id() + ":" + secret_access_key(); }

  // A SigV4-signed call with the server's keys; `path` starts with '/', already AWS-encoded.
  HttpReply call(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::string& content_type = "") const {
    return http_call(method, endpoint() + path, body, "s3", credentials(), content_type);
  }

  void create_bucket(const std::string& bucket) {
    REQUIRE(call("PUT", "/" + bucket).status == 200);
  }
  // `key` already AWS-encoded.
  void put(const std::string& bucket, const std::string& encoded_key, const std::string& body) {
    // Not curl's default form content type: moto would parse the body as a form and store nothing.
    REQUIRE(
        call("PUT", "/" + bucket + "/" + encoded_key, body, "application/octet-stream").status ==
        200);
  }

 private:
  bool ready() const {
    if (kind_ == S3ServerKind::moto)
      return http_call("GET", endpoint() + "/moto-api/").status == 200;
    return call("GET", "/").status == 200;
  }

  S3ServerKind kind_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<TempDir> data_;
};

}  // namespace thimble::test
