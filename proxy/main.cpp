// thimble: the thumbnail origin server. This file only wires the modules together:
// configuration → signer, source, result cache, origin service, worker pool, HTTP adapter.
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include "cache/result_cache.h"
#include "cache/result_store.h"
#include "conf/base/clock.h"
#include "conf/config.h"
#include "proxy/common/access_log.h"
#include "proxy/common/metrics.h"
#include "proxy/http/http_server.h"
#include "proxy/service/origin_service.h"
#include "proxy/service/worker_pool.h"
#include "proxy/sources/source_factory.h"
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
    "security.keys → THIMBLE_SECURITY_KEYS (comma-separated). See README.md for all keys.\n"
    "\n"
    "Signals: SIGHUP reloads the configuration file (keys, presets, lifetimes, output\n"
    "settings, limits); SIGTERM or SIGINT stop taking work, finish what was accepted, exit 0.\n";

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

// The values /metrics reads from the components that keep them.
void add_readings(proxy::Metrics& metrics, const proxy::OriginService& service,
                  const proxy::WorkerPool& pool, const cache::ResultCache& results) {
  auto gauge = [&](std::string name, std::string help, std::function<double()> read) {
    metrics.add_reading(std::move(name), "gauge", std::move(help), std::move(read));
  };
  auto counter = [&](std::string name, std::string help, std::function<double()> read) {
    metrics.add_reading(std::move(name), "counter", std::move(help), std::move(read));
  };
  auto count = [](std::uint64_t value) { return static_cast<double>(value); };
  gauge("thimble_worker_queue_depth", "Jobs waiting for a worker.",
        [&pool, count] { return count(pool.queued()); });
  gauge("thimble_workers_busy", "Workers running a job.",
        [&pool, count] { return count(pool.running()); });
  gauge("thimble_workers", "Worker threads.", [&pool] { return pool.threads(); });
  gauge("thimble_draining", "1 while shutting down.",
        [&service] { return service.draining() ? 1 : 0; });
  gauge("thimble_cache_bytes{cache=\"results\"}", "Bytes held by the in-memory caches.",
        [&results, count] { return count(results.stats().bytes); });
  gauge("thimble_cache_bytes{cache=\"originals\"}", "",
        [&service, count] { return count(service.original_cache_stats().bytes); });
  gauge("thimble_cache_entries{cache=\"results\"}", "Entries in the in-memory caches.",
        [&results, count] { return count(results.stats().entries); });
  gauge("thimble_cache_entries{cache=\"originals\"}", "",
        [&service, count] { return count(service.original_cache_stats().entries); });
  counter("thimble_cache_evictions_total{cache=\"results\"}",
          "Entries evicted from the in-memory caches to make room.",
          [&results, count] { return count(results.stats().evictions); });
  counter("thimble_cache_evictions_total{cache=\"originals\"}", "",
          [&service, count] { return count(service.original_cache_stats().evictions); });
  counter("thimble_source_fetches_total", "Requests made to the source of originals.",
          [&service, count] { return count(service.counters().fetches); });
  counter("thimble_transforms_total", "Thumbnails (and meta/ descriptions) produced.",
          [&service, count] { return count(service.counters().renders); });
  counter("thimble_coalesced_requests_total",
          "Requests that waited for an identical request's transform instead of doing their own.",
          [&service, count] { return count(service.counters().coalesced); });
  counter("thimble_result_storage_hits_total", "Thumbnails read from result storage.",
          [&service, count] { return count(service.counters().store_hits); });
  counter(
      "thimble_original_checks_total",
      "Held thumbnails whose original was checked with the source (result_storage.revalidate_s).",
      [&service, count] { return count(service.counters().checks); });
  counter("thimble_original_cache_hits_total", "Originals reused from memory instead of fetched.",
          [&service, count] { return count(service.counters().original_hits); });
  counter("thimble_not_found_cache_hits_total",
          "404s answered from memory without asking the source.",
          [&service, count] { return count(service.counters().not_found_hits); });
  gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
        proxy::process_resident_bytes);
  gauge("process_open_fds", "Open file descriptors.", proxy::process_open_fds);
}

const char* environment(const char* name) {
  return std::getenv(name);
}

// SIGHUP: reads the configuration file again. Keys, presets, lifetimes, output settings and limits
// apply to the requests that begin after it; what sizes listeners, sources and memories needs a
// restart and is reported. An invalid file changes nothing.
void reload(const std::string& path, const conf::Config& running, proxy::OriginService& service) {
  Result<conf::Config> fresh = conf::load_config_file(path, environment);
  Result<proxy::OriginOptions> options = fresh.ok() ? proxy::OriginOptions::from(*fresh)
                                                    : Result<proxy::OriginOptions>(fresh.status());
  if (!options.ok()) {
    proxy::log_line("error", "reload refused, the previous configuration keeps serving: " +
                                 options.status().message());
    return;
  }
  const std::size_t presets = fresh->presets.size();
  service.reload(std::move(options).value(),
                 signing::UrlSigner(fresh->security.keys, fresh->security.allow_unsafe));
  proxy::log_line("info", "configuration reloaded from " + path + ": " +
                              std::to_string(fresh->security.keys.size()) + " keys, " +
                              std::to_string(presets) + " presets");
  std::string ignored;
  for (const std::string& key : conf::restart_required_changes(running, *fresh)) {
    ignored += (ignored.empty() ? "" : ", ") + key;
  }
  if (!ignored.empty()) {
    proxy::log_line("warning", "changes to " + ignored + " take effect after a restart");
  }
}

int serve(const std::string& config_path, const conf::Config& config) {
  SystemClock clock;
  signing::UrlSigner signer(config.security.keys, config.security.allow_unsafe);
  Result<std::unique_ptr<proxy::Source>> made = proxy::make_source(config);
  if (!made.ok()) {
    proxy::log_line("error", "configuration error: " + made.status().message());
    return 1;
  }
  proxy::Source& source = **made;
  cache::ResultCache results(config.result_cache.memory_bytes, config.result_cache.shards, clock);
  Result<proxy::OriginOptions> options = proxy::OriginOptions::from(config);
  if (!options.ok()) {
    proxy::log_line("error", "configuration error: " + options.status().message());
    return 1;
  }
  int workers = config.server.workers > 0
                    ? config.server.workers
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  transform::use_one_thread_per_render();
  // Workers run niced: under a transform storm the reactor still gets the CPU it needs.
  const int worker_nice = config.server.worker_nice;
  proxy::WorkerPool pool(
      workers, static_cast<std::size_t>(config.server.queue_length), [worker_nice] {
        if (worker_nice > 0) {
          const int tid = static_cast<int>(::gettid());
          ::setpriority(PRIO_PROCESS, static_cast<id_t>(tid),
                        ::getpriority(PRIO_PROCESS, static_cast<id_t>(tid)) + worker_nice);
        }
      });
  std::unique_ptr<cache::ResultStore> store = proxy::make_result_store(config, clock);
  proxy::Metrics metrics;
  proxy::ServiceDependencies with(source, results, clock);
  with.workers = &pool;
  with.store = store.get();
  // Result-storage writes run on a worker after the answer is sent; with the queue full they are
  // skipped.
  with.defer = [&pool](std::function<void()> write) { pool.try_submit(std::move(write)); };
  with.store_unsafe = config.result_storage.store_unsafe;
  with.metrics = &metrics;
  proxy::OriginService service(std::move(options).value(), signer, std::move(with));
  add_readings(metrics, service, pool, results);

  const bool separate_admin = config.server.admin_port != 0;
  proxy::HttpServer server(
      config.server, config.server.host, config.server.port,
      separate_admin ? proxy::HttpServer::Routes::kPublic : proxy::HttpServer::Routes::kAll,
      service, &metrics);
  std::unique_ptr<proxy::HttpServer> admin;
  if (separate_admin) {
    admin = std::make_unique<proxy::HttpServer>(
        config.server, config.server.host, config.server.admin_port,
        proxy::HttpServer::Routes::kAdmin, service, &metrics);
  }
  for (proxy::HttpServer* listener : {&server, admin.get()}) {
    if (!listener) continue;
    if (Status started = listener->start(); !started.ok()) {
      proxy::log_line("error", started.message());
      return 1;
    }
  }

  proxy::log_line(
      "info", "listening on http://" + config.server.host + ":" + std::to_string(server.port()) +
                  (admin ? " (admin routes on port " + std::to_string(admin->port()) + ")"
                         : std::string()) +
                  " with " + std::to_string(workers) + " workers; originals from " +
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

  // The signals were blocked before any thread started: SIGHUP reloads, SIGINT/SIGTERM stop.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  int received = 0;
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
    reload(config_path, config, service);
  }

  proxy::log_line(
      "info", std::string("received ") + strsignal(received) + ": finishing in-flight requests");
  service.set_draining();
  server.begin_drain();
  const auto drain_until =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(config.server.drain_timeout_ms);
  bool drained = pool.drain(std::chrono::milliseconds(config.server.drain_timeout_ms));
  // The last answers may still be on their way out of Pistache's reactor: let them leave, within
  // what is left of the drain time (at least a moment).
  const auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 drain_until - std::chrono::steady_clock::now()),
                             std::chrono::milliseconds(500));
  server.shutdown(left);
  if (admin) admin->shutdown();
  proxy::flush_access_log();
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
  // Block the shutdown and reload signals in every thread (they inherit this mask); main waits
  // for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client hanging up must never kill the process
  // Two malloc arenas instead of glibc's 8 per core, unless MALLOC_ARENA_MAX says otherwise:
  // measured under mixed load (README, "Hostile input, overload and faults"), the same
  // throughput and a third less memory kept after the load. jemalloc and a fixed mmap
  // threshold gave memory back too, but cost 40% of the transform throughput.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);

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

  Result<conf::Config> config = conf::load_config_file(config_path, environment);
  if (!config.ok()) {
    std::cerr << "thimble: configuration error: " << config.status().message() << "\n";
    return 1;
  }
  if (check_only) {
    // Presets are options strings: they are checked by the URL parser, as a request would be.
    if (Result<proxy::OriginOptions> options = proxy::OriginOptions::from(*config); !options.ok()) {
      std::cerr << "thimble: configuration error: " << options.status().message() << "\n";
      return 1;
    }
    std::cout << "configuration OK: " << config_path << "\n";
    return 0;
  }
  return serve(config_path, *config);
}
