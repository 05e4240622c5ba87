#include "proxy/access_log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "conf/json.h"

namespace thimble::proxy {
namespace {
std::mutex output_mutex;

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
  std::lock_guard lock(output_mutex);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace thimble::proxy
