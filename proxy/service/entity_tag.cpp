#include "proxy/service/entity_tag.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "proxy/common/header_policy.h"

namespace thimble::proxy {
namespace {

constexpr std::string_view kPurpose = "thimble/entity-tag/v1";
constexpr std::size_t kMacDigits = 16;

}  // namespace

EntityTags::EntityTags(const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    Key derived{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(kPurpose.data()), kPurpose.size(), derived.data(),
         &length);
    keys_.push_back(derived);
  }
  if (keys_.empty()) {
    Key random{};
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
      throw std::runtime_error("no random bytes for the entity-tag key");
    }
    keys_.push_back(random);
  }
}

std::string EntityTags::mac(const Key& key, std::string_view transform,
                            std::string_view token) const {
  std::string message;
  message.reserve(transform.size() + token.size() + 1);
  message.append(transform).append("-").append(token);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < kMacDigits / 2; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::string EntityTags::marks_digest(std::string_view mark_versions) {
  return mark_versions.empty() ? std::string() : transform_hash(mark_versions);
}

std::string EntityTags::make(std::string_view transform, std::string_view source_token,
                             std::string_view marks) const {
  std::string token(source_token);
  if (!marks.empty()) token.append("~").append(marks);
  std::string etag;
  etag.reserve(transform.size() + token.size() + kMacDigits + 4);
  etag.append("\"").append(transform).append("-").append(token).append(".");
  etag.append(mac(keys_.front(), transform, token)).append("\"");
  return etag;
}

std::vector<std::string> EntityTags::source_tokens(std::string_view if_none_match,
                                                   std::string_view transform,
                                                   std::string_view marks) const {
  std::vector<std::string> tokens;
  for (const std::string& token : verified(if_none_match, transform)) {
    const std::size_t tilde = token.find('~');
    const std::string_view made_with =
        tilde == std::string::npos ? std::string_view() : std::string_view(token).substr(tilde + 1);
    if (made_with == marks) tokens.push_back(token.substr(0, tilde));
  }
  return tokens;
}

bool EntityTags::issued_for(std::string_view etag, std::string_view transform) const {
  return !verified(etag, transform).empty();
}

std::vector<std::string> EntityTags::verified(std::string_view if_none_match,
                                              std::string_view transform) const {
  std::vector<std::string> tokens;
  for (const std::string& tag : parse_if_none_match(if_none_match)) {
    const std::size_t dot = tag.rfind('.');
    if (dot == std::string::npos || tag.size() - dot - 1 != kMacDigits ||
        tag.size() < transform.size() + 1 || tag.compare(0, transform.size(), transform) != 0 ||
        tag[transform.size()] != '-' || dot <= transform.size() + 1) {
      continue;
    }
    const std::string_view token =
        std::string_view(tag).substr(transform.size() + 1, dot - transform.size() - 1);
    const std::string_view offered = std::string_view(tag).substr(dot + 1);
    for (const Key& key : keys_) {
      const std::string expected = mac(key, transform, token);
      if (CRYPTO_memcmp(expected.data(), offered.data(), kMacDigits) == 0) {
        tokens.emplace_back(token);
        break;
      }
    }
  }
  return tokens;
}

}  // namespace thimble::proxy
