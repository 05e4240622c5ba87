// The real `thimble` binary for integration tests: started on a free loopback port with a
// configuration written by the test and originals copied from the corpus, stopped with SIGTERM;
// plus a libcurl client that keeps its keep-alive connection and records headers.
#pragma once

#include <curl/curl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"
#include "proxy/common/metrics.h"
#include "signing/signer.h"
#include "support.h"

namespace thimble::test {

inline const char* const kKey = "integration-key";

struct Reply {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  long new_connections = 0;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "<absent>" : it->second;
  }
};

// A libcurl easy handle; reusing one Client reuses its keep-alive connection.
class Client {
 public:
  Client() : curl_(curl_easy_init()) {}
  ~Client() { curl_easy_cleanup(curl_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Reply request(const std::string& url, const std::vector<std::string>& headers = {},
                const char* method = "GET", bool http10 = false) {
    Reply reply;
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_PATH_AS_IS, 1L);  // send `..` untouched
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 60L);
    if (std::string(method) == "HEAD") {
      curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
    } else if (std::string(method) != "GET") {
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method);
    }
    if (http10) curl_easy_setopt(curl_, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_0);
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Client::on_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &Client::on_header);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &reply);
    CURLcode code = curl_easy_perform(curl_);
    curl_slist_free_all(list);
    // CHECK, not REQUIRE: requests also run on threads, where a throwing assertion would abort.
    CHECK_MESSAGE(code == CURLE_OK, std::string(curl_easy_strerror(code)));
    if (code != CURLE_OK) return reply;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &reply.new_connections);
    return reply;
  }

 private:
  static size_t on_body(char* data, size_t size, size_t n, void* user) {
    static_cast<Reply*>(user)->body.append(data, size * n);
    return size * n;
  }
  static size_t on_header(char* data, size_t size, size_t n, void* user) {
    std::string line(data, size * n);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      value.erase(value.find_last_not_of("\r\n") + 1);
      static_cast<Reply*>(user)->headers[name] = value;
    }
    return size * n;
  }
  CURL* curl_;
};

// A process's peak resident memory (VmHWM), in MiB; reset_peak_rss() starts a new peak (Linux
// 4.0+, writing 5 to clear_refs), so the peak of one request can be read.
inline double peak_rss_mib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmHWM:")) return std::stod(line.substr(6)) / 1024;
  }
  return 0;
}
inline void reset_peak_rss(pid_t pid) {
  std::ofstream("/proc/" + std::to_string(pid) + "/clear_refs") << "5";
}

// `thimble` started on a free port with originals in a temporary folder; stopped with SIGTERM.
class ThimbleProcess {
 public:
  // `server_yaml` is the `server:` mapping, `cache_control` the `cache_control:` one; `extra_yaml`
  // adds other sections; `security_yaml` adds keys to the `security:` mapping (`, key: value`);
  // `source_yaml` is the `source:` mapping.
  explicit ThimbleProcess(const std::string& server_yaml = "{host: 127.0.0.1, workers: 2}",
                          const std::string& extra_yaml = "",
                          const std::string& cache_control = "{max_age: 600}",
                          const std::string& security_yaml = "",
                          const std::string& source_yaml = "{file: {root: originals}}")
      : port_(free_port()) {
    root_ = dir_.path() / "originals";
    std::filesystem::create_directories(root_ / "photos");
    std::filesystem::copy_file(corpus("medium/mate_Storm.jpg"), root_ / "photos/storm.jpg");
    std::filesystem::copy_file(corpus("medium/mate_Storm.jpg"), root_ / "key with space.jpg");
    std::filesystem::copy_file(corpus("large/Kleiber_by_Lukas_Baubkus.jpg"), root_ / "large.jpg");
    write_file(dir_.path() / "secret.jpg", "outside");
    write_file(dir_.path() / "thimble.yaml", "server: " + server_yaml +
                                                 "\n"
                                                 "security: {keys: [" +
                                                 std::string(kKey) + "]" + security_yaml +
                                                 "}\n"
                                                 "source: " +
                                                 source_yaml +
                                                 "\n"
                                                 "cache_control: " +
                                                 cache_control + "\n" + extra_yaml);
    log_ = dir_.path() / "server.log";
    const pid_t parent = getpid();
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      end_with_parent(SIGKILL, parent);
      std::string port = std::to_string(port_);
      setenv("THIMBLE_SERVER_PORT", port.c_str(), 1);
      FILE* out = freopen(log_.c_str(), "w", stdout);
      if (out) dup2(fileno(stdout), fileno(stderr));
      std::string config = (dir_.path() / "thimble.yaml").string();
      execl(THIMBLE_SERVER_BINARY, "thimble", "--config", config.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (http_call("GET", base() + "/healthz").status == 200) return;
    }
    FAIL("thimble did not start: " << read_file(log_));
  }

  ~ThimbleProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  void signal(int number) { kill(pid_, number); }
  std::filesystem::path config_path() const { return dir_.path() / "thimble.yaml"; }

  // Sends SIGTERM and returns the exit status (or -1 if it did not exit within 30 s).
  int stop() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 300; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return -1;
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string url(const std::string& options_and_image) const {
    return base() + signing::UrlSigner({kKey}, false).sign(options_and_image);
  }
  std::string log() const { return read_file(log_); }
  // The log once it contains `text` (access-log lines are written every 20 ms), or as it is
  // after 5 s.
  std::string log_with(const std::string& text) const {
    std::string now = log();
    for (int i = 0; i < 250 && now.find(text) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      now = log();
    }
    return now;
  }
  const std::filesystem::path& originals() const { return root_; }
  // The folder of thimble.yaml: relative paths in `extra_yaml` are relative to it.
  const std::filesystem::path& directory() const { return dir_.path(); }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  TempDir dir_;
  std::filesystem::path root_, log_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace thimble::test
