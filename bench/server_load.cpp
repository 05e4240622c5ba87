#include "server_load.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>
#include <thread>

namespace thimble::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One connection's state: its easy handle and the request it is working on.
struct Slot {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::size_t index = 0;  // into the request list
  Clock::time_point started;
  std::string etag;
};

std::size_t discard_body(char*, std::size_t size, std::size_t n, void*) {
  return size * n;
}

// A header callback keeping the ETag's value in the std::string `user`.
std::size_t read_etag(char* data, std::size_t size, std::size_t n, void* user) {
  const std::size_t length = size * n;
  constexpr std::string_view kName = "etag:";
  if (length > kName.size() && std::equal(kName.begin(), kName.end(), data, [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    std::string value(data + kName.size(), length - kName.size());
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of("\r\n") + 1);
    *static_cast<std::string*>(user) = std::move(value);
  }
  return length;
}

// One client thread: its own multi handle, `connections` requests in flight, taking request
// numbers from `next` until `options.total` have been issued or `options.seconds` have passed.
void drive(const std::vector<LoadRequest>& requests, const LoadOptions& options, int connections,
           Clock::time_point began, std::atomic<std::size_t>& next, LoadReport& report,
           std::mutex& report_mutex) {
  LoadReport mine;
  std::vector<std::string> etags(requests.size());
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(connections));
  std::vector<Slot> slots(static_cast<std::size_t>(connections));

  const auto until = began + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(options.seconds));
  auto start = [&](Slot& slot) {
    const std::size_t number = next.fetch_add(1);
    if (options.total > 0 ? number >= options.total : Clock::now() >= until) return false;
    slot.index = number % requests.size();
    const LoadRequest& request = requests[slot.index];
    curl_slist_free_all(slot.headers);
    slot.headers = nullptr;
    if (!request.if_none_match.empty()) {
      slot.headers =
          curl_slist_append(nullptr, ("If-None-Match: " + request.if_none_match).c_str());
    }
    slot.etag.clear();
    curl_easy_setopt(slot.easy, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(slot.easy, CURLOPT_HTTPHEADER, slot.headers);
    slot.started = Clock::now();
    curl_multi_add_handle(multi, slot.easy);
    return true;
  };

  int active = 0;
  for (Slot& slot : slots) {
    slot.easy = curl_easy_init();
    curl_easy_setopt(slot.easy, CURLOPT_PRIVATE, &slot);
    curl_easy_setopt(slot.easy, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(slot.easy, CURLOPT_HEADERFUNCTION, read_etag);
    curl_easy_setopt(slot.easy, CURLOPT_HEADERDATA, &slot.etag);
    curl_easy_setopt(slot.easy, CURLOPT_TIMEOUT, options.timeout_s);
    curl_easy_setopt(slot.easy, CURLOPT_NOSIGNAL, 1L);
    if (start(slot)) ++active;
  }
  while (active > 0) {
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg != CURLMSG_DONE) continue;
      Slot* slot = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &slot);
      const auto now = Clock::now();
      const double ms = std::chrono::duration<double, std::milli>(now - slot->started).count();
      long status = 0;
      if (message->data.result == CURLE_OK) {
        curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
        ++mine.statuses[status];
        ++mine.requests;
        mine.latencies_ms.push_back(ms);
        if (!slot->etag.empty()) etags[slot->index] = slot->etag;
      } else {
        ++mine.errors;
      }
      if (options.keep_samples) {
        mine.samples.push_back(
            {static_cast<float>(std::chrono::duration<double>(now - began).count()),
             static_cast<float>(ms), static_cast<int>(status),
             static_cast<int>(message->data.result), requests[slot->index].kind});
      }
      curl_multi_remove_handle(multi, slot->easy);
      if (!start(*slot)) --active;
    }
    if (active > 0) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  for (Slot& slot : slots) {
    curl_slist_free_all(slot.headers);
    curl_easy_cleanup(slot.easy);
  }
  curl_multi_cleanup(multi);

  std::lock_guard lock(report_mutex);
  report.requests += mine.requests;
  report.errors += mine.errors;
  for (const auto& [status, count] : mine.statuses) report.statuses[status] += count;
  report.latencies_ms.insert(report.latencies_ms.end(), mine.latencies_ms.begin(),
                             mine.latencies_ms.end());
  for (std::size_t i = 0; i < etags.size(); ++i) {
    if (!etags[i].empty()) report.etags[i] = etags[i];
  }
  report.samples.insert(report.samples.end(), mine.samples.begin(), mine.samples.end());
}

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

HttpAnswer http_get(const std::string& url, long timeout_s) {
  HttpAnswer answer;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_etag);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &answer.etag);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer.status);
  }
  curl_easy_cleanup(curl);
  return answer;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

LoadReport run_load(const std::vector<LoadRequest>& requests, std::size_t total, int connections,
                    int threads) {
  LoadOptions options;
  options.total = total;
  options.connections = connections;
  options.threads = threads;
  return run_load(requests, options);
}

LoadReport run_load(const std::vector<LoadRequest>& requests, const LoadOptions& options) {
  LoadReport report;
  report.etags.resize(requests.size());
  if (requests.empty() || (options.total == 0 && options.seconds <= 0)) return report;
  const int threads = std::clamp(options.threads, 1, std::max(1, options.connections));
  std::atomic<std::size_t> next{0};
  std::mutex report_mutex;
  const auto started = Clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    // Connections split as evenly as possible between the threads.
    const int share = options.connections / threads + (t < options.connections % threads ? 1 : 0);
    clients.emplace_back(
        [&, share] { drive(requests, options, share, started, next, report, report_mutex); });
  }
  for (auto& client : clients) client.join();
  report.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return report;
}

}  // namespace thimble::bench
