#include "proxy/common/header_policy.h"

#include <openssl/evp.h>

#include <cctype>
#include <ctime>

namespace thimble::proxy {

std::string http_date(WallTime t) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char out[40];
  std::snprintf(out, sizeof out, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return out;
}

std::optional<WallTime> parse_http_date(std::string_view text) {
  if (text.size() != 29 || text.substr(25) != " GMT") return std::nullopt;
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  auto number = [&](std::size_t at, std::size_t len) -> int {
    int v = 0;
    for (std::size_t i = at; i < at + len; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) return -1;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_mday = number(5, 2);
  std::size_t month = kMonths.find(text.substr(8, 3));
  tm.tm_year = number(12, 4) - 1900;
  tm.tm_hour = number(17, 2);
  tm.tm_min = number(20, 2);
  tm.tm_sec = number(23, 2);
  if (tm.tm_mday < 1 || month == std::string_view::npos || month % 3 != 0 || tm.tm_year < 70 ||
      tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
      tm.tm_sec > 60 || text[3] != ',') {
    return std::nullopt;
  }
  tm.tm_mon = static_cast<int>(month / 3);
  std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

int max_age_for(const conf::CacheControlConfig& config, std::optional<int> url_max_age) {
  return url_max_age.value_or(config.max_age);
}

std::string cache_control_for_success(const conf::CacheControlConfig& config,
                                      std::optional<int> url_max_age) {
  std::string out = "public, max-age=" + std::to_string(max_age_for(config, url_max_age));
  if (config.s_maxage >= 0 && !url_max_age) {
    out += ", s-maxage=" + std::to_string(config.s_maxage);
  }
  if (config.stale_while_revalidate >= 0) {
    out += ", stale-while-revalidate=" + std::to_string(config.stale_while_revalidate);
  }
  return out;
}

std::string transform_hash(std::string_view canonical_key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(canonical_key.data(), canonical_key.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::vector<std::string> parse_if_none_match(std::string_view header) {
  std::vector<std::string> tags;
  std::size_t i = 0;
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',' || header[i] == '\t')) ++i;
    if (i >= header.size()) break;
    if (header[i] == '*') {
      tags.emplace_back("*");
      ++i;
      continue;
    }
    if (header.substr(i, 2) == "W/") i += 2;
    if (i >= header.size() || header[i] != '"') break;  // malformed: stop reading
    std::size_t close = header.find('"', i + 1);
    if (close == std::string_view::npos) break;
    tags.emplace_back(header.substr(i + 1, close - i - 1));
    i = close + 1;
  }
  return tags;
}

bool if_none_match_matches(std::string_view header, std::string_view etag) {
  if (etag.size() < 2) return false;
  std::string_view bare = etag.substr(1, etag.size() - 2);
  for (const auto& tag : parse_if_none_match(header)) {
    if (tag == "*" || tag == bare) return true;
  }
  return false;
}

bool accepts_type(std::string_view accept, std::string_view type) {
  for (std::size_t at = accept.find(type); at != std::string_view::npos;
       at = accept.find(type, at + 1)) {
    // A `;q=0` right after the type refuses it.
    std::size_t end = accept.find(',', at);
    std::string_view params = accept.substr(
        at + type.size(), end == std::string_view::npos ? end : end - at - type.size());
    std::size_t q = params.find("q=");
    if (q == std::string_view::npos) return true;
    std::string_view value = params.substr(q + 2);
    bool zero = !value.empty() && value[0] == '0';
    for (std::size_t i = 1; zero && i < value.size() && value[i] != ' ' && value[i] != ';'; ++i) {
      if (value[i] != '.' && value[i] != '0') zero = false;
    }
    if (!zero) return true;
  }
  return false;
}

}  // namespace thimble::proxy
