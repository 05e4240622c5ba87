// UrlSigner: Thumbor-compatible URL signatures, byte-compatible with libthumbor.
//
// The signed string is the raw request path after `/<signature>/`: still percent-encoded, without
// the query string and without a leading slash (`meta/` included). The MAC is HMAC-SHA1 with the
// security key, encoded as URL-safe base64 with `=` padding: always 28 characters. Several keys
// may be configured: the first signs, every one verifies, so keys can be rotated without breaking
// URLs a CDN already caches. Verification compares in constant time. A non-ASCII key verifies in
// both of its encodings (see latin1_form), so URLs that apps signed with libthumbor's CryptoURL
// and URLs signed as Thumbor's server does both pass.
//
// Thread-safety: an UrlSigner is immutable after construction; share it freely.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/base/status.h"

namespace thimble::signing {

// The Latin-1 bytes of a UTF-8 key whose characters all lie in U+0000–U+00FF and that has at
// least one outside ASCII; nullopt otherwise. libthumbor's CryptoURL signs with a key's Latin-1
// bytes, while Thumbor's server verifies with its UTF-8 bytes: the same secret, two encodings.
std::optional<std::string> latin1_form(std::string_view utf8_key);

// URL-safe base64 (RFC 4648 §5) with `=` padding, as Python's urlsafe_b64encode.
std::string base64url_encode(std::string_view bytes);

// The 28-character signature of `path` (no leading slash) under `key`.
std::string signature_of(std::string_view key, std::string_view path);

// A request path split at its first segment: `/<signature>/<rest>`.
struct SignedPath {
  std::string signature;  // with `%3D` turned back into `=`
  std::string_view rest;  // the signed part, raw
};
// Splits a raw request path (starting with '/'); nullopt when there is no `/<x>/<rest>` shape.
std::optional<SignedPath> split_signed_path(std::string_view request_path);

// The signing key for command-line tools, never taken from argv: the first line of `key_file`
// when one is named (a trailing CR dropped), else `environment_value` (THIMBLE_KEY; may be null).
// Fails with the reason when the file cannot be read or no key is found.
Result<std::string> tool_key(const std::string& key_file, const char* environment_value);

class UrlSigner {
 public:
  UrlSigner(std::vector<std::string> keys, bool allow_unsafe);

  // `/<signature>/<path>` for `path` (a leading '/' is ignored), signed with the first key.
  // Precondition: at least one key.
  std::string sign(std::string_view path) const;

  // Checks a whole raw request path. On success returns the signed part (the Thumbor options and
  // image), a view into `request_path`. Failure is Code::kBadSignature with the reason.
  Result<std::string_view> verify(std::string_view request_path) const;

  bool has_keys() const { return !keys_.empty(); }
  // The configured keys (the first signs).
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  std::vector<std::string> keys_;
  // What verifies: each key's UTF-8 bytes and, for a non-ASCII key, its Latin-1 bytes.
  std::vector<std::string> verifying_;
  bool allow_unsafe_;
};

}  // namespace thimble::signing
