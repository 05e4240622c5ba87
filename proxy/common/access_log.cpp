#include "proxy/common/access_log.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

#include "conf/base/json.h"

namespace thimble::proxy {
namespace {
std::mutex output_mutex;

// The access log's buffer and the thread that writes it to stdout.
class AccessLogWriter {
 public:
  static constexpr std::size_t kWakeBytes = 256 * 1024;
  static constexpr auto kInterval = std::chrono::milliseconds(20);

  AccessLogWriter() : thread_([this] { run(); }) {}
  ~AccessLogWriter() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  void append(const std::string& line) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      pending_ += line;
      wake = pending_.size() >= kWakeBytes;
    }
    if (wake) wake_.notify_one();
  }

  // Writes what is waiting. Taking the output lock first keeps batches in order whoever
  // writes them.
  void flush() {
    std::lock_guard output(output_mutex);
    std::string out;
    {
      std::lock_guard lock(mutex_);
      out.swap(pending_);
    }
    if (out.empty()) return;
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }

 private:
  void run() {
    while (true) {
      bool stop = false;
      {
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, kInterval,
                       [this] { return stopping_ || pending_.size() >= kWakeBytes; });
        stop = stopping_;
      }
      flush();
      if (stop) return;
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::string pending_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

AccessLogWriter& access_log_writer() {
  static AccessLogWriter writer;
  return writer;
}

std::string now_iso8601() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[96];
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count()));
  return out;
}
}  // namespace

void log_line(std::string_view level, std::string_view message) {
  std::string line =
      now_iso8601() + " thimble " + std::string(level) + ": " + std::string(message) + "\n";
  std::lock_guard lock(output_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void log_access(const AccessRecord& r) {
  auto ms = [](double value) {
    char out[32];
    std::snprintf(out, sizeof out, "%.2f", value);
    return std::string(out);
  };
  std::string line = "{\"time\":\"" + now_iso8601() + "\",\"id\":" + json_string(r.request_id) +
                     ",\"method\":" + json_string(r.method) + ",\"path\":" + json_string(r.path) +
                     ",\"status\":" + std::to_string(r.status) +
                     ",\"bytes\":" + std::to_string(r.bytes) + ",\"ms\":" + ms(r.total_ms) +
                     ",\"cache\":" + json_string(r.cache);
  if (!r.source.empty()) line += ",\"source\":" + json_string(r.source);
  // Stage durations only for requests that did the work themselves.
  if (r.fetch_ms > 0) line += ",\"fetch_ms\":" + ms(r.fetch_ms);
  if (r.decode_ms > 0 || r.encode_ms > 0) {
    line += ",\"decode_ms\":" + ms(r.decode_ms) + ",\"transform_ms\":" + ms(r.transform_ms) +
            ",\"encode_ms\":" + ms(r.encode_ms);
  }
  if (!r.error.empty()) line += ",\"error\":" + json_string(r.error);
  line += "}\n";
  access_log_writer().append(line);
}

void flush_access_log() {
  access_log_writer().flush();
}

}  // namespace thimble::proxy
