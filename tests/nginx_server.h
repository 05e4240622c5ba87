// Debian's nginx started in the foreground on a free loopback port, in its own temporary folder,
// for one test: with one of conf/nginx's recipes (CDN tests) or as a plain static file server (the
// HTTP source's real origin in the source contract suite).
#pragma once

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "http_client.h"
#include "support.h"

namespace thimble::test {

class Nginx {
 public:
  // The `http {}` contents to run, given the address to listen on ("127.0.0.1:<port>").
  using Config = std::function<std::string(const std::string& listen)>;

  explicit Nginx(const Config& config) : port_(free_port()) {
    REQUIRE_MESSAGE(std::filesystem::exists(kBinary),
                    "nginx is not installed (Debian: nginx-light)");
    const std::filesystem::path dir = dir_.path();
    write_file(dir / "site.conf", config("127.0.0.1:" + std::to_string(port_)));
    std::string temp_paths;
    for (const char* kind : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
      temp_paths += std::string("    ") + kind + "_temp_path " + (dir / kind).string() + ";\n";
    }
    write_file(dir / "nginx.conf", std::string(geteuid() == 0 ? "user root;\n" : "") +
                                       "daemon off;\nworker_processes 1;\npid " +
                                       (dir / "nginx.pid").string() + ";\nerror_log " +
                                       (dir / "error.log").string() +
                                       " warn;\nevents { worker_connections 256; }\nhttp {\n"
                                       "    include /etc/nginx/mime.types;\n    access_log " +
                                       (dir / "access.log").string() + ";\n" + temp_paths +
                                       "    include " + (dir / "site.conf").string() + ";\n}\n");
    const pid_t parent = getpid();
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      end_with_parent(SIGTERM, parent);  // the master then stops its workers
      const std::string prefix = dir.string() + "/";
      const std::string file = (dir / "nginx.conf").string();
      execl(kBinary, "nginx", "-p", prefix.c_str(), "-c", file.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (http_call("GET", base() + "/healthz").status != 0) return;
    }
    FAIL("nginx did not start: " << read_file(dir / "error.log"));
  }
  ~Nginx() {
    kill(pid_, SIGQUIT);  // graceful
    waitpid(pid_, nullptr, 0);
  }
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  static constexpr const char* kBinary = "/usr/sbin/nginx";
  TempDir dir_;
  int port_;
  pid_t pid_ = -1;
};

// conf/nginx/`recipe` as operators copy it, with its listen address and `replacements` (exact
// strings of the recipe → their values for the test; each must occur) rewritten.
inline Nginx::Config nginx_recipe(const std::string& recipe,
                                  std::map<std::string, std::string> replacements) {
  return [recipe, replacements](const std::string& listen) {
    std::string text = read_file(std::string(THIMBLE_SOURCE_DIR "/conf/nginx/") + recipe);
    std::map<std::string, std::string> all = replacements;
    all[recipe == "thimble-cache.conf" ? "127.0.0.1:8080" : "127.0.0.1:8081"] = listen;
    for (const auto& [from, to] : all) {
      const std::size_t at = text.find(from);
      REQUIRE_MESSAGE(at != std::string::npos, recipe << " no longer contains " << from);
      text.replace(at, from.size(), to);
    }
    return text;
  };
}

// A static file server for `root`, with nginx's own ETags, Last-Modified and conditional GETs.
inline Nginx::Config nginx_static_files(const std::string& root) {
  return [root](const std::string& listen) {
    return "server {\n    listen " + listen + ";\n    root " + root + ";\n    location / { }\n}\n";
  };
}

}  // namespace thimble::test
