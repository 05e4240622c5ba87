#include "proxy/sources/address_policy.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace thimble::proxy {
namespace {

using Ip = std::array<std::uint8_t, 16>;

Ip mapped_v4(const std::uint8_t* v4) {
  Ip ip{};
  ip[10] = ip[11] = 0xff;
  std::memcpy(ip.data() + 12, v4, 4);
  return ip;
}

bool is_mapped_v4(const Ip& ip) {
  for (int i = 0; i < 10; ++i) {
    if (ip[static_cast<std::size_t>(i)] != 0) return false;
  }
  return ip[10] == 0xff && ip[11] == 0xff;
}

// Ranges that are never a public image origin, as IPv4-mapped or IPv6 networks.
const std::vector<Network>& internal_networks() {
  static const std::vector<Network> networks = [] {
    std::vector<Network> out;
    for (const char* cidr :
         {"0.0.0.0/8",       "10.0.0.0/8",     "100.64.0.0/10", "127.0.0.0/8",    "169.254.0.0/16",
          "172.16.0.0/12",   "192.0.0.0/24",   "192.0.2.0/24",  "192.168.0.0/16", "198.18.0.0/15",
          "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",   "240.0.0.0/4",    "::/128",
          "::1/128",         "fc00::/7",       "fe80::/10",     "fec0::/10",      "ff00::/8",
          "2001:db8::/32",   "100::/64"}) {
      out.push_back(*Network::parse(cidr));
    }
    return out;
  }();
  return networks;
}

}  // namespace

std::optional<Network> Network::parse(std::string_view cidr) {
  std::size_t slash = cidr.find('/');
  std::string address(cidr.substr(0, slash));
  Network n;
  std::uint8_t v4[4];
  int max_prefix = 128;
  if (inet_pton(AF_INET, address.c_str(), v4) == 1) {
    n.address = mapped_v4(v4);
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, address.c_str(), n.address.data()) != 1) {
    return std::nullopt;
  }
  int prefix = max_prefix;
  if (slash != std::string_view::npos) {
    std::string_view digits = cidr.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc() || end != digits.data() + digits.size() || prefix < 0 ||
        prefix > max_prefix) {
      return std::nullopt;
    }
  }
  n.prefix = max_prefix == 32 ? prefix + 96 : prefix;
  return n;
}

bool Network::contains(const Ip& ip) const {
  int bits = prefix;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
    if ((ip[i] & mask) != (address[i] & mask)) return false;
  }
  return true;
}

AddressPolicy::AddressPolicy(std::vector<Network> allowed) : allowed_(std::move(allowed)) {}

bool AddressPolicy::is_internal(const Ip& ip) {
  // IPv6 forms that embed an IPv4 address: judge the embedded one too.
  Ip embedded = ip;
  static const Network nat64 = *Network::parse("64:ff9b::/96");
  static const Network compatible = *Network::parse("::/96");
  if (nat64.contains(ip) || (compatible.contains(ip) && !is_mapped_v4(ip))) {
    embedded = mapped_v4(ip.data() + 12);
  }
  for (const Network& n : internal_networks()) {
    if (n.contains(ip) || n.contains(embedded)) return true;
  }
  return false;
}

bool AddressPolicy::permits(const sockaddr* address) const {
  Ip ip{};
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    ip = mapped_v4(reinterpret_cast<const std::uint8_t*>(&v4->sin_addr));
  } else if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    std::memcpy(ip.data(), &v6->sin6_addr, 16);
  } else {
    return false;
  }
  for (const Network& n : allowed_) {
    if (n.contains(ip)) return true;
  }
  return !is_internal(ip);
}

bool AddressPolicy::permits(std::string_view text) const {
  std::string address(text);
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET, address.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    return permits(reinterpret_cast<const sockaddr*>(&v4));
  }
  if (inet_pton(AF_INET6, address.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    return permits(reinterpret_cast<const sockaddr*>(&v6));
  }
  return false;
}

}  // namespace thimble::proxy
