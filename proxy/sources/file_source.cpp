#include "proxy/sources/file_source.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

namespace thimble::proxy {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens `relative` below `root_fd`; the kernel refuses any resolution that leaves the root.
int open_beneath(int root_fd, const std::string& relative) {
  open_how how{};
  // O_NONBLOCK: a FIFO (or a device) under the root must never hold a worker; fetch() then
  // accepts regular files only. Reads of regular files ignore the flag.
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root_fd, relative.c_str(), &how, sizeof how));
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      out += raw[i];
      continue;
    }
    if (i + 2 >= raw.size()) return std::nullopt;
    int hi = hex_value(raw[i + 1]), lo = hex_value(raw[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi << 4 | lo);
    i += 2;
  }
  if (out.find('\0') != std::string::npos) return std::nullopt;
  return out;
}

std::string percent_encode(std::string_view bytes, std::string_view kept) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        kept.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string url_encode_key(std::string_view key) {
  return percent_encode(key, "-._~/!$&'()*+,;=:@");
}

FileSource::FileSource(std::string root, std::uint64_t max_bytes)
    : root_(std::move(root)), max_bytes_(max_bytes) {
  root_fd_ = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

FileSource::~FileSource() {
  if (root_fd_ >= 0) ::close(root_fd_);
}

Result<SourceObject> FileSource::fetch(std::string_view key, const FetchConditions& conditions) {
  std::optional<std::string> path = percent_decode(key);
  if (!path) return Status(Code::kBadRequest, "the image path is not validly percent-encoded");
  if (path->empty() || path->front() == '/') {
    return Status(Code::kSourceForbidden, "the image path must be relative");
  }
  if (root_fd_ < 0) return Status(Code::kInternal, "the source folder cannot be opened");

  Fd fd(open_beneath(root_fd_, *path));
  if (fd.get() < 0) {
    switch (errno) {
      case ENOENT:
      case ENOTDIR: return Status(Code::kNotFound, "source not found");
      case EXDEV:
      case ELOOP: return Status(Code::kSourceForbidden, "the image path leaves the source folder");
      case EACCES:
      case EPERM: return Status(Code::kSourceForbidden, "the source cannot be read");
      case ENAMETOOLONG: return Status(Code::kBadRequest, "the image path is too long");
      case ENOSYS: return Status(Code::kInternal, "file sources need Linux 5.6 or newer (openat2)");
      default: return Status(Code::kInternal, "the source cannot be opened");
    }
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status(Code::kInternal, "the source cannot be read");
  if (!S_ISREG(st.st_mode)) return Status(Code::kNotFound, "source not found");

  SourceObject object;
  char token[64];
  std::snprintf(token, sizeof token, "%llx-%llx",
                static_cast<unsigned long long>(st.st_mtim.tv_sec) * 1000000000ull +
                    static_cast<unsigned long long>(st.st_mtim.tv_nsec),
                static_cast<unsigned long long>(st.st_size));
  object.validators.token = token;
  object.validators.last_modified =
      std::chrono::system_clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec));

  for (const auto& held : conditions.if_token_in) {
    if (held == object.validators.token) {
      object.not_modified = true;
      return object;
    }
  }
  if (conditions.if_token_in.empty() && conditions.if_modified_since &&
      *object.validators.last_modified <= *conditions.if_modified_since) {
    object.not_modified = true;
    return object;
  }

  if (static_cast<std::uint64_t>(st.st_size) > max_bytes_) {
    return Status(Code::kTooLarge, "the source is larger than the limit of " +
                                       std::to_string(max_bytes_) + " bytes");
  }
  object.bytes.resize(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < object.bytes.size()) {
    ssize_t n = ::read(fd.get(), object.bytes.data() + done, object.bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status(Code::kInternal, "the source cannot be read");
    if (n == 0) break;  // the file shrank while being read
    done += static_cast<std::size_t>(n);
  }
  object.bytes.resize(done);
  return object;
}

Status FileSource::list_keys(std::string_view prefix,
                             const std::function<bool(const ListedKey&)>& each) {
  namespace fs = std::filesystem;
  if (prefix.starts_with('/') || prefix.find("..") != std::string_view::npos) {
    return Status(Code::kBadRequest, "the prefix must be a relative path inside the folder");
  }
  const std::size_t slash = prefix.rfind('/');
  const fs::path root(root_);
  const fs::path start =
      slash == std::string_view::npos ? root : root / std::string(prefix.substr(0, slash));
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return Status(Code::kInternal, "cannot read " + root_);
  if (!fs::is_directory(start, ec)) return Status::Ok();
  for (fs::recursive_directory_iterator
           walk(start, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && walk != end; walk.increment(ec)) {
    if (!walk->is_regular_file(ec) || walk->is_symlink(ec)) continue;
    const std::string key = walk->path().lexically_relative(root).generic_string();
    if (!key.starts_with(prefix)) continue;
    if (!each(ListedKey{url_encode_key(key)})) return Status::Ok();
  }
  if (ec) return Status(Code::kInternal, "cannot walk " + start.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace thimble::proxy
