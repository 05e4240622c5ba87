// thimble: the thumbnail origin server. This file only wires the modules together:
// configuration → signer, source, result cache, origin service, worker pool, HTTP adapter.
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include "cache/result_cache.h"
#include "cache/result_store.h"
#include "conf/clock.h"
#include "conf/config.h"
#include "proxy/access_log.h"
#include "proxy/http_server.h"
#include "proxy/origin_service.h"
#include "proxy/source_factory.h"
#include "proxy/worker_pool.h"
#include "signing/signer.h"
#include "transform/pipeline.h"

namespace {

using namespace thimble;

constexpr const char* kDevelopmentKey = "thimble-development-key";

constexpr const char* kUsage =
    "usage: thimble [--config FILE] [--check-config]\n"
    "\n"
    "Serves Thumbor-style signed thumbnail URLs: /<signature>/<options>/<image>.\n"
    "\n"
    "  --config FILE    configuration file (default: conf/thimble.yaml)\n"
    "  --check-config   validate the configuration (file + THIMBLE_* environment) and exit:\n"
    "                   status 0 when valid, 1 with the offending key and reason when not\n"
    "  --help           show this help\n"
    "\n"
    "Every key can be overridden from the environment: server.port → THIMBLE_SERVER_PORT,\n"
    "security.keys → THIMBLE_SECURITY_KEYS (comma-separated). See README.md for all keys.\n";

// An example the operator can paste: the first sample image, signed with the first key.
void print_example(const conf::Config& config, const signing::UrlSigner& signer, int port) {
  if (config.source.type != "file") return;
  namespace fs = std::filesystem;
  std::vector<std::string> images;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(config.source.file.root, ec)) {
    std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec) &&
        (name.ends_with(".jpg") || name.ends_with(".png") || name.ends_with(".webp"))) {
      images.push_back(name);
    }
  }
  if (images.empty() || !signer.has_keys()) return;
  std::sort(images.begin(), images.end());
  std::string host = config.server.host == "0.0.0.0" ? "127.0.0.1" : config.server.host;
  std::string url = "http://" + host + ":" + std::to_string(port) +
                    signer.sign("fit-in/300x200/" + images.front());
  std::cerr << "\nTry it:\n  curl -o thumbnail.jpg '" << url << "'\n\n";
}

int serve(const conf::Config& config) {
  SystemClock clock;
  signing::UrlSigner signer(config.security.keys, config.security.allow_unsafe);
  Result<std::unique_ptr<proxy::Source>> made = proxy::make_source(config);
  if (!made.ok()) {
    proxy::log_line("error", "configuration error: " + made.status().message());
    return 1;
  }
  proxy::Source& source = **made;
  cache::ResultCache results(config.result_cache.memory_bytes, config.result_cache.shards, clock);
  proxy::OriginService service(proxy::OriginOptions::from(config), signer, source, results, clock);

  int workers = config.server.workers > 0
                    ? config.server.workers
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  transform::use_one_thread_per_render();
  proxy::WorkerPool pool(workers, static_cast<std::size_t>(config.server.queue_length));
  std::unique_ptr<cache::ResultStore> store = proxy::make_result_store(config, clock);
  if (store) {
    // Writes run on a worker after the answer is sent; with the queue full they are skipped.
    service.use_result_store(
        store.get(), [&pool](std::function<void()> write) { pool.try_submit(std::move(write)); },
        config.result_storage.store_unsafe);
  }
  proxy::HttpServer server(config.server, service, pool);
  if (Status started = server.start(); !started.ok()) {
    proxy::log_line("error", started.message());
    return 1;
  }

  proxy::log_line("info", "listening on http://" + config.server.host + ":" +
                              std::to_string(server.port()) + " with " + std::to_string(workers) +
                              " workers; originals from " +
                              (config.source.type == "file" ? config.source.file.root
                                                            : config.source.type + " origins"));
  if (!config.security.keys.empty() && config.security.keys.front() == kDevelopmentKey) {
    proxy::log_line("warning",
                    "signing with the development key: set THIMBLE_SECURITY_KEYS in production");
  }
  if (std::error_code ec; !config.smart.face_cascade.empty() &&
                          !std::filesystem::is_regular_file(config.smart.face_cascade, ec)) {
    proxy::log_line("warning",
                    "smart/ will use corner features only: cannot read the face "
                    "cascade " +
                        config.smart.face_cascade + " (Debian: opencv-data)");
  }
  if (config.security.allow_unsafe) {
    proxy::log_line("warning", "unsigned /unsafe/ URLs are allowed (security.allow_unsafe)");
  }
  print_example(config, signer, server.port());

  // SIGINT/SIGTERM were blocked before any thread started; wait for one here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int received = 0;
  sigwait(&signals, &received);

  proxy::log_line(
      "info", std::string("received ") + strsignal(received) + ": finishing in-flight requests");
  service.set_draining();
  bool drained = pool.drain(std::chrono::milliseconds(config.server.drain_timeout_ms));
  server.shutdown();
  if (!drained) {
    proxy::log_line("error", "drain timed out with work still running; exiting anyway");
    std::fflush(nullptr);
    std::_Exit(1);
  }
  proxy::log_line("info", "stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the shutdown signals in every thread (they inherit this mask); main waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client hanging up must never kill the process

  std::string config_path = "conf/thimble.yaml";
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      config_path = arg.substr(9);
    } else if (arg == "--check-config") {
      check_only = true;
    } else {
      std::cerr << "thimble: unknown argument '" << arg << "'\n\n" << kUsage;
      return 2;
    }
  }

  Result<conf::Config> config = conf::load_config_file(
      config_path, [](const char* name) -> const char* { return std::getenv(name); });
  if (!config.ok()) {
    std::cerr << "thimble: configuration error: " << config.status().message() << "\n";
    return 1;
  }
  if (check_only) {
    std::cout << "configuration OK: " << config_path << "\n";
    return 0;
  }
  return serve(*config);
}
