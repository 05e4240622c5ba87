#include "cache/result_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

constexpr std::string_view kIndexRoot = ".thimble/";
constexpr std::string_view kVariants = kVariantIndex;

// Whether `path` is a relative path of plain segments (no empty, `.` or `..` segment).
bool plain_path(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string::npos ||
      path.find('\\') != std::string::npos || path.size() > 4000) {
    return false;
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::string_view segment = std::string_view(path).substr(
        start, slash == std::string::npos ? std::string::npos : slash - start);
    if (segment.empty() || segment == "." || segment == ".." || segment.size() > 255) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

// FNV-1a: a stable name for an index entry, the same in every replica and release.
std::string hex64(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, hash >>= 4) out[static_cast<std::size_t>(i)] = kHex[hash & 15];
  return out;
}

std::chrono::system_clock::time_point written_at(const fs::path& path, std::error_code& ec) {
  const auto written = fs::last_write_time(path, ec);
  return ec ? std::chrono::system_clock::time_point{}
            : std::chrono::time_point_cast<std::chrono::system_clock::duration>(
                  std::chrono::file_clock::to_sys(written));
}

// Writes `data` to a new file at `path`; true when it exists afterwards (also when another
// writer made it first).
bool write_new(const fs::path& path, const std::string& data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errno == EEXIST;
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (done == data.size()) return true;
  std::error_code ec;
  fs::remove(path, ec);  // the next write makes it again
  return false;
}

}  // namespace

std::string variant_folder(const std::string& image) {
  if (!plain_path(image)) return {};
  return std::string(kVariants) + image + "/";
}

std::string variant_entry(const std::string& image, const std::string& key) {
  const std::string folder = variant_folder(image);
  if (folder.empty() || !DirectoryStore::valid_key(key)) return {};
  return folder + hex64(key);
}

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
  return plain_path(key) && !key.starts_with(kIndexRoot);
}

std::shared_ptr<const CachedResult> DirectoryStore::read(const std::string& key) {
  if (!valid_key(key)) return nullptr;
  const fs::path path = fs::path(root_) / key;
  std::error_code ec;
  const auto written = written_at(path, ec);
  if (ec || clock_.wall_now() - written > ttl_) return nullptr;
  std::optional<std::string> body = read_all(path);
  std::optional<std::string> meta = read_all(path.string() + ".meta");
  if (!body || !meta) return nullptr;
  auto result = std::make_shared<CachedResult>();
  result->body = std::move(*body);
  result->checked_at = written;
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

void DirectoryStore::write(const std::string& key, const std::string& image,
                           const CachedResult& result) {
  const std::string entry = variant_entry(image, key);
  if (entry.empty()) return;
  const fs::path path = fs::path(root_) / key;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return;
  // The index entry first: a result on disk is always one a purge finds.
  // Written in place, not renamed: an entry cut short names no key whose hash it is, and a purge
  // skips it.
  const fs::path entry_path = fs::path(root_) / entry;
  if (!fs::is_regular_file(entry_path, ec)) {
    fs::create_directories(entry_path.parent_path(), ec);
    if (ec || !write_new(entry_path, key)) return;
  }
  std::string meta;
  for (const auto& [name, value] : stored_headers(result)) meta += name + ": " + value + "\n";
  // The metadata first: a reader that finds the image finds its headers too.
  if (write_atomically(path.string() + ".meta", meta)) write_atomically(path, result.body);
}

void DirectoryStore::purge_folder(const std::string& image, const std::string& folder,
                                  PurgeCounts& counts, const Removed& removed) {
  std::error_code ec;
  bool any = false;
  for (const auto& item : fs::directory_iterator(folder, ec)) {
    if (!item.is_regular_file(ec)) continue;
    const std::string name = item.path().filename().string();
    if (name.find(".tmp") != std::string::npos) continue;  // a write in progress
    std::optional<std::string> key = read_all(item.path());
    if (!key || !valid_key(*key) || name != hex64(*key)) continue;
    any = true;
    const fs::path result = fs::path(root_) / *key;
    std::error_code body_error, meta_error;
    fs::remove(result, body_error);
    fs::remove(result.string() + ".meta", meta_error);
    if (body_error || meta_error) {
      ++counts.failed;
      continue;
    }
    fs::remove(item.path(), ec);
    ++counts.variants;
    if (removed) removed(*key, image);
  }
  if (any) ++counts.originals;
  // The folder goes once it is empty (it still holds the index of a longer key otherwise).
  fs::remove(folder, ec);
}

PurgeCounts DirectoryStore::purge(const std::string& image, bool prefix, const Removed& removed) {
  PurgeCounts counts;
  const fs::path variants = fs::path(root_) / kVariants;
  if (!prefix) {
    const std::string folder = variant_folder(image);
    if (!folder.empty()) purge_folder(image, (fs::path(root_) / folder).string(), counts, removed);
    return counts;
  }
  // Every index folder under the prefix's last complete segment whose key starts with it.
  const std::size_t slash = image.rfind('/');
  const std::string base = slash == std::string::npos ? std::string() : image.substr(0, slash);
  if (!base.empty() && !plain_path(base)) return counts;
  const fs::path start = base.empty() ? variants : variants / base;
  std::vector<std::pair<std::string, std::string>> folders;  // (image key, absolute folder)
  std::error_code ec;
  for (fs::recursive_directory_iterator walk(start, ec), end; !ec && walk != end;
       walk.increment(ec)) {
    if (!walk->is_regular_file(ec)) continue;
    const fs::path folder = walk->path().parent_path();
    const std::string key = folder.lexically_relative(variants).generic_string();
    if (key.starts_with(image) && (folders.empty() || folders.back().second != folder.string())) {
      folders.emplace_back(key, folder.string());
    }
  }
  // Deepest folders first, so that a folder emptied of its entries can go too.
  std::sort(folders.begin(), folders.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  folders.erase(std::unique(folders.begin(), folders.end()), folders.end());
  for (const auto& [key, folder] : folders) purge_folder(key, folder, counts, removed);
  return counts;
}

}  // namespace thimble::cache
