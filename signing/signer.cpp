#include "signing/signer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <fstream>

namespace thimble::signing {

std::string base64url_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (std::size_t left = bytes.size() - i; left > 0) {
    unsigned v = byte(i) << 16 | (left == 2 ? byte(i + 1) << 8 : 0);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += left == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::string signature_of(std::string_view key, std::string_view path) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(path.data()), path.size(), mac.data(), &mac_len);
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac_len));
}

std::optional<SignedPath> split_signed_path(std::string_view request_path) {
  if (request_path.empty() || request_path.front() != '/') return std::nullopt;
  std::string_view path = request_path.substr(1);
  std::size_t slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  SignedPath split;
  std::string_view raw_signature = path.substr(0, slash);
  // Some clients percent-encode the base64 padding: `...%3D` means `...=`.
  for (std::size_t i = 0; i < raw_signature.size(); ++i) {
    if (raw_signature[i] == '%' && i + 2 < raw_signature.size() && raw_signature[i + 1] == '3' &&
        (raw_signature[i + 2] == 'D' || raw_signature[i + 2] == 'd')) {
      split.signature += '=';
      i += 2;
    } else {
      split.signature += raw_signature[i];
    }
  }
  split.rest = path.substr(slash + 1);
  return split;
}

std::optional<std::string> latin1_form(std::string_view utf8_key) {
  std::string out;
  bool beyond_ascii = false;
  for (std::size_t i = 0; i < utf8_key.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8_key[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    // U+0080–U+00FF is C2 80 – C3 BF in UTF-8; anything else has no Latin-1 byte.
    if ((c != 0xc2 && c != 0xc3) || i + 1 >= utf8_key.size()) return std::nullopt;
    const auto next = static_cast<unsigned char>(utf8_key[i + 1]);
    if (next < 0x80 || next > 0xbf) return std::nullopt;
    out += static_cast<char>(((c & 0x03) << 6) | (next & 0x3f));
    beyond_ascii = true;
    ++i;
  }
  if (!beyond_ascii) return std::nullopt;
  return out;
}

UrlSigner::UrlSigner(std::vector<std::string> keys, bool allow_unsafe)
    : keys_(std::move(keys)), allow_unsafe_(allow_unsafe) {
  for (const std::string& key : keys_) {
    verifying_.push_back(key);
    if (std::optional<std::string> latin1 = latin1_form(key)) verifying_.push_back(*latin1);
  }
}

std::string UrlSigner::sign(std::string_view path) const {
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::string out = "/";
  out += signature_of(keys_.front(), path);
  out += '/';
  out += path;
  return out;
}

namespace {
bool is_well_formed(std::string_view signature) {
  if (signature.size() != 28 || signature[27] != '=') return false;
  for (std::size_t i = 0; i < 27; ++i) {
    char c = signature[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}
}  // namespace

Result<std::string_view> UrlSigner::verify(std::string_view request_path) const {
  std::optional<SignedPath> split = split_signed_path(request_path);
  if (!split || split->rest.empty()) {
    return Status(Code::kBadSignature, "missing signature");
  }
  if (split->signature == "unsafe") {
    if (allow_unsafe_) return split->rest;
    return Status(Code::kBadSignature, "unsigned (unsafe) URLs are not allowed");
  }
  if (!is_well_formed(split->signature)) {
    return Status(Code::kBadSignature, "malformed signature");
  }
  // Every key is tried, and each comparison takes the same time whatever the bytes.
  bool match = false;
  for (const auto& key : verifying_) {
    std::string expected = signature_of(key, split->rest);
    match |= CRYPTO_memcmp(expected.data(), split->signature.data(), expected.size()) == 0;
  }
  if (!match) return Status(Code::kBadSignature, "signature does not match");
  return split->rest;
}

Result<std::string> tool_key(const std::string& key_file, const char* environment_value) {
  std::string key;
  if (!key_file.empty()) {
    std::ifstream in(key_file);
    if (!in || !std::getline(in, key)) {
      return Status(Code::kBadRequest, "cannot read a key from " + key_file);
    }
    if (!key.empty() && key.back() == '\r') key.pop_back();
  } else if (environment_value != nullptr) {
    key = environment_value;
  }
  if (key.empty())
    return Status(Code::kBadRequest, "no key: use --key-file FILE or set THIMBLE_KEY");
  return key;
}

}  // namespace thimble::signing
