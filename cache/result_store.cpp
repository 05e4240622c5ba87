#include "cache/result_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace thimble::cache {
namespace {

namespace fs = std::filesystem;

// A regular file's bytes; anything else (a FIFO, a device, a folder) is no stored result and is
// never waited on: opened without blocking, checked with fstat before reading.
std::optional<std::string> read_all(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  std::optional<std::string> out;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    std::string data;
    data.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::read(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    data.resize(done);
    out = std::move(data);
  }
  ::close(fd);
  return out;
}

// Writes `data` to `path` through a temporary file in the same folder and a rename.
bool write_atomically(const fs::path& path, const std::string& data) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  const fs::path temporary = path.string() + ".tmp" + std::to_string(random());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out.write(data.data(), static_cast<std::streamsize>(data.size()))) {
      std::error_code ec;
      fs::remove(temporary, ec);
      return false;
    }
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
  if (ec) fs::remove(temporary, ec);
  return !ec;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> stored_headers(const CachedResult& result) {
  std::vector<std::pair<std::string, std::string>> headers = {{"content-type", result.content_type},
                                                              {"etag", result.etag}};
  if (result.last_modified) {
    headers.emplace_back("last-modified-epoch",
                         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                            result.last_modified->time_since_epoch())
                                            .count()));
  }
  headers.emplace_back("vary-accept", result.vary_accept ? "1" : "0");
  if (result.url_max_age) headers.emplace_back("max-age", std::to_string(*result.url_max_age));
  return headers;
}

bool read_stored_header(CachedResult& result, std::string_view name, std::string_view value) {
  try {
    if (name == "content-type") result.content_type = std::string(value);
    if (name == "etag") result.etag = std::string(value);
    if (name == "last-modified-epoch") {
      result.last_modified = std::chrono::system_clock::time_point(
          std::chrono::seconds(std::stoll(std::string(value))));
    }
    if (name == "vary-accept") result.vary_accept = value == "1";
    if (name == "max-age") result.url_max_age = std::stoi(std::string(value));
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

DirectoryStore::DirectoryStore(std::string root, std::chrono::seconds ttl, const Clock& clock)
    : root_(std::move(root)), ttl_(ttl), clock_(clock) {}

bool DirectoryStore::valid_key(const std::string& key) {
  if (key.empty() || key.front() == '/' || key.find('\0') != std::string::npos ||
      key.find('\\') != std::string::npos || key.size() > 4000) {
    return false;
  }
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t slash = key.find('/', start);
    const std::string segment =
        key.substr(start, slash == std::string::npos ? slash : slash - start);
    if (segment.empty() || segment == "." || segment == ".." || segment.size() > 255) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

std::shared_ptr<const CachedResult> DirectoryStore::read(const std::string& key) {
  if (!valid_key(key)) return nullptr;
  const fs::path path = fs::path(root_) / key;
  std::error_code ec;
  const auto written = fs::last_write_time(path, ec);
  if (ec) return nullptr;
  if (clock_.wall_now() - std::chrono::file_clock::to_sys(written) > ttl_) return nullptr;
  std::optional<std::string> body = read_all(path);
  std::optional<std::string> meta = read_all(path.string() + ".meta");
  if (!body || !meta) return nullptr;
  auto result = std::make_shared<CachedResult>();
  result->body = std::move(*body);
  std::istringstream lines(*meta);
  for (std::string line; std::getline(lines, line);) {
    const std::size_t colon = line.find(": ");
    if (colon == std::string::npos) continue;
    // A damaged sidecar is a miss, never a crash.
    if (!read_stored_header(*result, std::string_view(line).substr(0, colon),
                            std::string_view(line).substr(colon + 2))) {
      return nullptr;
    }
  }
  if (result->content_type.empty() || result->etag.empty()) return nullptr;
  return result;
}

void DirectoryStore::write(const std::string& key, const CachedResult& result) {
  if (!valid_key(key)) return;
  const fs::path path = fs::path(root_) / key;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return;
  std::string meta;
  for (const auto& [name, value] : stored_headers(result)) meta += name + ": " + value + "\n";
  // The metadata first: a reader that finds the image finds its headers too.
  if (write_atomically(path.string() + ".meta", meta)) write_atomically(path, result.body);
}

}  // namespace thimble::cache
