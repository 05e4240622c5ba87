// FileSource: originals from a local folder. The image key, percent-decoded, is a path below the
// root. It can never reach outside the root: `..` segments, absolute paths, NUL bytes and
// symbolic links leading out are refused (403); the kernel enforces it at open time
// (openat2 RESOLVE_BENEATH), so there is no window between a check and the open.
//
// Thread-safety: fetch() may be called concurrently.
#pragma once

#include <cstdint>
#include <string>

#include "proxy/sources/source.h"

namespace thimble::proxy {

class FileSource final : public Source {
 public:
  // `root` must be an existing folder; `max_bytes` bounds what is read (413 beyond).
  FileSource(std::string root, std::uint64_t max_bytes);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  Result<SourceObject> fetch(std::string_view key, const FetchConditions& conditions) override;
  // Walks the folder below `prefix` (symbolic links are not followed; regular files only).
  Status list_keys(std::string_view prefix,
                   const std::function<bool(const ListedKey&)>& each) override;

  const std::string& root() const { return root_; }

 private:
  std::string root_;
  int root_fd_ = -1;
  std::uint64_t max_bytes_;
};

}  // namespace thimble::proxy
