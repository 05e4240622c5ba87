// thimble-load: mixed traffic against a running Thimble, for load and fault runs
// (bench/load_test.sh). Many keep-alive connections send, in set proportions, cached hits,
// uncached transforms of the given originals, 304 revalidations, bad signatures, malformed URLs
// and missing keys, for a set time. Meanwhile /metrics is read every second (resident memory,
// open descriptors, requests in flight, queue depth). The report: per kind of request, its
// statuses and latency percentiles; transport errors by cause; memory before, at peak and after
// the run; optionally a per-second timeline of statuses (to see a fault come and go).
//
// With --storm N it sends miss storms instead: N identical requests at once for a thumbnail never
// asked before (as a CDN does after a purge), a few times per original, and reports their
// statuses and latencies and how many fetches and transforms the server did for them.
//
// Exit status: 0 when every request got an HTTP answer and no 5xx other than 503 (each of those
// can be allowed, for fault runs), and in storms every answer was a 200; 1 otherwise; 2 for bad
// arguments.
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proxy/common/metrics.h"
#include "server_load.h"
#include "signing/signer.h"

namespace {

using thimble::bench::http_get;
using thimble::bench::HttpAnswer;
using thimble::bench::LoadOptions;
using thimble::bench::LoadReport;
using thimble::bench::LoadRequest;
using thimble::bench::percentile;
using thimble::proxy::exposition_value;

constexpr const char* kUsage =
    "usage: thimble-load --server URL [--key-file FILE] --image KEY [--image KEY...]\n"
    "                    [--seconds 60] [--connections 256] [--threads 4]\n"
    "                    [--mix cached:60,transform:10,revalidate:15,bad_signature:5,"
    "malformed:5,missing:5]\n"
    "                    [--timeline] [--settle 10] [--allow-5xx] [--allow-errors]\n"
    "                    [--recovered-from SECONDS] [--max-fd-growth 16]\n"
    "                    [--json FILE] [--ready-file FILE]\n"
    "       thimble-load --server URL [--key-file FILE] --image KEY... --storm N [--rounds 3]\n"
    "The key signs URLs: --key-file or THIMBLE_KEY. Each --image is an original the server can\n"
    "fetch; uncached transforms ask it for sizes never asked before. With --recovered-from,\n"
    "requests sent after that second must all be answered without a 5xx other than 503 (a\n"
    "fault is over by then); --max-fd-growth bounds the server's extra descriptors afterwards.\n"
    "--ready-file FILE is written when the warm-up is done and the timed load begins, for\n"
    "scripts that time faults from that moment.\n";

enum Kind { kCached, kTransform, kRevalidate, kBadSignature, kMalformed, kMissing, kKinds };
constexpr const char* kKindNames[kKinds] = {"cached",        "transform", "revalidate",
                                            "bad_signature", "malformed", "missing"};

struct Gauges {
  double rss = 0, fds = 0, in_flight = 0, queued = 0;
};

Gauges read_gauges(const std::string& metrics_url) {
  const HttpAnswer f = http_get(metrics_url);
  if (f.status != 200) return {-1, -1, -1, -1};
  return {exposition_value(f.body, "process_resident_memory_bytes"),
          exposition_value(f.body, "process_open_fds"),
          // Less this scrape, which is in flight while it is answered.
          exposition_value(f.body, "thimble_requests_in_flight") - 1,
          exposition_value(f.body, "thimble_worker_queue_depth")};
}

double mib(double bytes) {
  return bytes / (1 << 20);
}

// Miss storms: per original and round, `size` identical requests at once, one per connection,
// for a size never asked before. Every answer must be a 200; the server's counters say how much
// work the storm cost.
int run_storms(const std::string& server, const thimble::signing::UrlSigner& signer,
               const std::vector<std::string>& images, int size, int rounds, int threads) {
  const std::string metrics_url = server + "/metrics";
  // The server's fetches and transforms so far, from one scrape.
  const auto work_done = [&] {
    const std::string metrics = http_get(metrics_url).body;
    return std::pair(exposition_value(metrics, "thimble_source_fetches_total"),
                     exposition_value(metrics, "thimble_transforms_total"));
  };
  // Sizes from the clock: a rerun against the same server does not find them cached.
  int next = static_cast<int>(std::chrono::system_clock::now().time_since_epoch().count() % 9000);
  std::printf("%-44s %8s %9s %9s %8s %10s  %s\n", "storm", "requests", "p50 ms", "max ms",
              "fetches", "transforms", "statuses");
  bool ok = true;
  for (const std::string& image : images) {
    for (int round = 0; round < rounds; ++round) {
      const std::string options = "fit-in/" + std::to_string(100 + next++ % 9000) + "x900/";
      const auto [fetches, transforms] = work_done();
      LoadOptions storm;
      storm.total = static_cast<std::size_t>(size);
      storm.connections = size;
      storm.threads = threads;
      const LoadReport report =
          thimble::bench::run_load({{server + signer.sign(options + image), "", 0}}, storm);
      std::string text;
      for (const auto& [status, count] : report.statuses) {
        text += std::to_string(status) + "×" + std::to_string(count) + " ";
        if (status != 200) ok = false;
      }
      if (report.errors > 0) {
        text += "no answer×" + std::to_string(report.errors);
        ok = false;
      }
      const auto [after_fetches, after_transforms] = work_done();
      std::printf("%-44s %8zu %9.2f %9.2f %8.0f %10.0f  %s\n",
                  (options + image).substr(0, 44).c_str(), report.requests + report.errors,
                  percentile(report.latencies_ms, 0.5), percentile(report.latencies_ms, 1.0),
                  after_fetches - fetches, after_transforms - transforms, text.c_str());
    }
  }
  if (!ok) std::printf("FAIL: a storm got answers other than 200\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string server, key_file, json_path,
      mix_text = "cached:60,transform:10,revalidate:15,bad_signature:5,malformed:5,missing:5";
  std::vector<std::string> images;
  LoadOptions options;
  options.seconds = 60;
  options.connections = 256;
  options.threads = 4;
  options.timeout_s = 120;
  options.keep_samples = true;
  double settle_s = 10, recovered_from = -1, max_fd_growth = 16;
  int storm = 0, rounds = 3;
  bool timeline = false, allow_5xx = false, allow_errors = false;
  std::string ready_file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fputs(kUsage, stderr);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--server")
      server = value();
    else if (arg == "--key-file")
      key_file = value();
    else if (arg == "--image")
      images.push_back(value());
    else if (arg == "--seconds")
      options.seconds = std::atof(value().c_str());
    else if (arg == "--connections")
      options.connections = std::atoi(value().c_str());
    else if (arg == "--threads")
      options.threads = std::atoi(value().c_str());
    else if (arg == "--mix")
      mix_text = value();
    else if (arg == "--settle")
      settle_s = std::atof(value().c_str());
    else if (arg == "--recovered-from")
      recovered_from = std::atof(value().c_str());
    else if (arg == "--max-fd-growth")
      max_fd_growth = std::atof(value().c_str());
    else if (arg == "--json")
      json_path = value();
    else if (arg == "--ready-file")
      ready_file = value();
    else if (arg == "--storm")
      storm = std::atoi(value().c_str());
    else if (arg == "--rounds")
      rounds = std::atoi(value().c_str());
    else if (arg == "--timeline")
      timeline = true;
    else if (arg == "--allow-5xx")
      allow_5xx = true;
    else if (arg == "--allow-errors")
      allow_errors = true;
    else {
      std::fputs(kUsage, stderr);
      return arg == "--help" ? 0 : 2;
    }
  }
  if (server.empty() || images.empty() || options.seconds <= 0 || options.connections < 1) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  thimble::Result<std::string> key =
      thimble::signing::tool_key(key_file, std::getenv("THIMBLE_KEY"));
  if (!key.ok()) {
    std::fprintf(stderr, "thimble-load: %s\n", key.status().message().c_str());
    return 2;
  }
  std::map<int, double> weights;
  for (std::size_t at = 0; at < mix_text.size();) {
    const std::size_t comma = std::min(mix_text.find(',', at), mix_text.size());
    const std::string part = mix_text.substr(at, comma - at);
    const std::size_t colon = part.find(':');
    const auto name =
        std::find(std::begin(kKindNames), std::end(kKindNames), part.substr(0, colon));
    if (colon == std::string::npos || name == std::end(kKindNames)) {
      std::fprintf(stderr, "thimble-load: --mix: unknown part '%s'\n", part.c_str());
      return 2;
    }
    weights[static_cast<int>(name - std::begin(kKindNames))] = std::atof(part.c_str() + colon + 1);
    at = comma + 1;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const thimble::signing::UrlSigner signer({*key}, false);
  if (storm > 0) {
    const int status = run_storms(server, signer, images, storm, std::max(rounds, 1),
                                  std::max(options.threads, 1));
    curl_global_cleanup();
    return status;
  }
  const std::string metrics_url = server + "/metrics";

  // Before anything: the server's own memory at rest.
  const Gauges baseline = read_gauges(metrics_url);
  // Cached hits: a few sizes of each original, made once now; their ETags for revalidation.
  std::vector<std::pair<std::string, std::string>> cached;  // url, etag
  for (const std::string& image : images) {
    for (const char* size : {"fit-in/200x200/", "300x300/", "fit-in/640x480/"}) {
      const std::string url = server + signer.sign(size + image);
      const HttpAnswer f = http_get(url);
      if (f.status != 200) {
        std::fprintf(stderr, "thimble-load: warming %s: status %ld\n", url.c_str(), f.status);
        return 1;
      }
      cached.emplace_back(url, f.etag);
    }
  }
  // The timed load begins: a script timing faults starts its clock now, not while warming.
  if (!ready_file.empty()) std::ofstream(ready_file) << "ready\n";

  // The request list: kinds drawn in the mix's proportions (fixed seed: runs are comparable);
  // every transform a size not asked before.
  std::vector<int> kinds;
  std::vector<double> kind_weights;
  for (const auto& [kind, weight] : weights) {
    kinds.push_back(kind);
    kind_weights.push_back(weight);
  }
  std::mt19937 random(42);
  std::discrete_distribution<std::size_t> pick(kind_weights.begin(), kind_weights.end());
  std::vector<LoadRequest> requests;
  int next_size = 0;
  for (int i = 0; i < 200000; ++i) {
    const int kind = kinds[pick(random)];
    LoadRequest r;
    r.kind = kind;
    const auto& [cached_url, etag] = cached[random() % cached.size()];
    const std::string& image = images[random() % images.size()];
    switch (kind) {
      case kCached: r.url = cached_url; break;
      case kRevalidate:
        r.url = cached_url;
        r.if_none_match = etag;
        break;
      case kTransform: {
        const int n = next_size++;
        r.url = server + signer.sign("fit-in/" + std::to_string(120 + n % 1500) + "x" +
                                     std::to_string(120 + n / 1500 % 1500) + "/" + image);
        break;
      }
      case kBadSignature:
        r.url = server + "/AAAAAAAAAAAAAAAAAAAAAAAAAAA=/fit-in/100x100/" + image;
        break;
      case kMalformed:
        r.url = server + signer.sign("fit-in/100x100/filters:blur(abc)/" + image);
        break;
      default: r.url = server + signer.sign("fit-in/100x100/missing/" + std::to_string(i) + ".jpg");
    }
    requests.push_back(std::move(r));
  }

  // /metrics every second while the load runs.
  std::atomic<bool> running{true};
  std::vector<std::pair<double, Gauges>> readings;
  const auto began = std::chrono::steady_clock::now();
  std::thread sampler([&] {
    while (running.load()) {
      const Gauges g = read_gauges(metrics_url);
      readings.emplace_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count(), g);
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
  const LoadReport report = thimble::bench::run_load(requests, options);
  running.store(false);
  sampler.join();
  // After: wait for the server to finish what it had, then let it settle.
  Gauges after = read_gauges(metrics_url);
  for (int i = 0; i < 300 && after.in_flight > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = read_gauges(metrics_url);
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(settle_s));
  after = read_gauges(metrics_url);
  double peak_rss = baseline.rss, peak_fds = baseline.fds, peak_queue = 0;
  for (const auto& [at, g] : readings) {
    peak_rss = std::max(peak_rss, g.rss);
    peak_fds = std::max(peak_fds, g.fds);
    peak_queue = std::max(peak_queue, g.queued);
  }

  // Per kind: statuses and latencies.
  std::map<int, std::map<int, std::size_t>> statuses;
  std::map<int, std::vector<double>> latencies;
  std::map<int, std::size_t> curl_errors;
  std::size_t bad_5xx = 0, failed_after_recovery = 0;
  for (const auto& s : report.samples) {
    const bool after_recovery = recovered_from >= 0 && s.at_s - s.ms / 1000 >= recovered_from;
    if (after_recovery && (s.status == 0 || (s.status >= 500 && s.status != 503))) {
      ++failed_after_recovery;
    }
    if (s.status == 0) {
      ++curl_errors[s.curl_code];
      continue;
    }
    ++statuses[s.kind][s.status];
    latencies[s.kind].push_back(s.ms);
    if (s.status >= 500 && s.status != 503) ++bad_5xx;
  }
  std::printf(
      "thimble-load: %d connections, %.0f s, %zu requests (%.0f/s), %zu without an answer\n",
      options.connections, report.seconds, report.samples.size(),
      static_cast<double>(report.samples.size()) / report.seconds, report.errors);
  std::printf("%-14s %9s %9s %9s  %s\n", "kind", "requests", "p50 ms", "p99 ms", "statuses");
  for (const auto& [kind, by_status] : statuses) {
    std::size_t n = 0;
    std::string text;
    for (const auto& [status, count] : by_status) {
      n += count;
      text += std::to_string(status) + "×" + std::to_string(count) + " ";
    }
    std::printf("%-14s %9zu %9.2f %9.2f  %s\n", kKindNames[kind], n,
                percentile(latencies[kind], 0.5), percentile(latencies[kind], 0.99), text.c_str());
  }
  for (const auto& [code, count] : curl_errors) {
    std::printf("no answer: %s ×%zu\n", curl_easy_strerror(static_cast<CURLcode>(code)), count);
  }
  if (after.rss < 0) {
    std::printf(
        "server memory (RSS): %.0f MiB before, %.0f MiB at peak; the server is gone after\n",
        mib(baseline.rss), mib(peak_rss));
  } else {
    std::printf("server memory (RSS): %.0f MiB before, %.0f MiB at peak, %.0f MiB after\n",
                mib(baseline.rss), mib(peak_rss), mib(after.rss));
    std::printf(
        "open descriptors: %.0f before, %.0f at peak, %.0f after; peak queue %.0f; "
        "in flight after: %.0f\n",
        baseline.fds, peak_fds, after.fds, peak_queue, after.in_flight);
  }
  if (timeline) {
    std::map<int, std::map<int, std::size_t>> per_second;
    for (const auto& s : report.samples) ++per_second[static_cast<int>(s.at_s)][s.status];
    std::printf("timeline (second: status×count, 0 = no answer; RSS MiB)\n");
    for (const auto& [second, by_status] : per_second) {
      std::printf("%4d:", second);
      for (const auto& [status, count] : by_status) std::printf(" %d×%zu", status, count);
      for (const auto& [at, g] : readings) {
        if (static_cast<int>(at) == second) {
          std::printf("  [%.0f MiB]", mib(g.rss));
          break;
        }
      }
      std::printf("\n");
    }
  }
  if (!json_path.empty()) {
    std::ofstream json(json_path);
    json << "{\"connections\": " << options.connections << ", \"seconds\": " << report.seconds
         << ", \"requests\": " << report.samples.size() << ", \"no_answer\": " << report.errors
         << ", \"bad_5xx\": " << bad_5xx << ", \"rss_before_bytes\": " << baseline.rss
         << ", \"rss_peak_bytes\": " << peak_rss << ", \"rss_after_bytes\": " << after.rss
         << ", \"fds_before\": " << baseline.fds << ", \"fds_after\": " << after.fds
         << ", \"kinds\": {";
    bool first = true;
    for (const auto& [kind, by_status] : statuses) {
      json << (first ? "" : ", ") << "\"" << kKindNames[kind]
           << "\": {\"p50_ms\": " << percentile(latencies[kind], 0.5)
           << ", \"p99_ms\": " << percentile(latencies[kind], 0.99) << ", \"statuses\": {";
      bool first_status = true;
      for (const auto& [status, count] : by_status) {
        json << (first_status ? "" : ", ") << "\"" << status << "\": " << count;
        first_status = false;
      }
      json << "}}";
      first = false;
    }
    json << "}}\n";
  }
  curl_global_cleanup();
  bool ok = true;
  if (bad_5xx > 0 && !allow_5xx) {
    std::printf("FAIL: %zu answers were 5xx other than 503\n", bad_5xx);
    ok = false;
  }
  if (report.errors > 0 && !allow_errors) {
    std::printf("FAIL: %zu requests got no HTTP answer\n", report.errors);
    ok = false;
  }
  if (failed_after_recovery > 0) {
    std::printf("FAIL: %zu requests sent after %.0f s failed (no answer, or 5xx other than 503)\n",
                failed_after_recovery, recovered_from);
    ok = false;
  } else if (recovered_from >= 0) {
    std::printf("recovered: every request sent after %.0f s was answered without a 502/504\n",
                recovered_from);
  }
  if (after.fds >= 0 && after.fds - baseline.fds > max_fd_growth) {
    std::printf("FAIL: the server holds %.0f more descriptors than before the run\n",
                after.fds - baseline.fds);
    ok = false;
  }
  if (after.in_flight > 0) {
    std::printf("FAIL: %.0f requests still in flight after the run\n", after.in_flight);
    ok = false;
  }
  return ok ? 0 : 1;
}
