// AddressPolicy: which network addresses Thimble may fetch originals from. Loopback, private,
// link-local, CGNAT, multicast, reserved and unspecified addresses are refused (including their
// IPv4-mapped and NAT64 IPv6 forms), unless an operator explicitly allows a network, as tests do
// for 127.0.0.1. Checked on the socket address actually about to be connected, after DNS and on
// every redirect hop, so no spelling of an address (decimal, octal, hex, a DNS name that resolves
// inward) gets around it.
//
// Thread-safety: immutable after construction.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/base/status.h"

namespace thimble::proxy {

// An IPv4 or IPv6 network in CIDR form, e.g. 127.0.0.1/32 or fd00::/8.
struct Network {
  std::array<std::uint8_t, 16> address{};  // IPv4 as IPv4-mapped IPv6
  int prefix = 128;                        // over the 128-bit (mapped) address

  static std::optional<Network> parse(std::string_view cidr);
  bool contains(const std::array<std::uint8_t, 16>& ip) const;
};

class AddressPolicy {
 public:
  explicit AddressPolicy(std::vector<Network> allowed = {});

  // Whether a connection to `address` (AF_INET or AF_INET6) may be made.
  bool permits(const sockaddr* address) const;
  // The same for an address in text form (for tests and logs); false when it does not parse.
  bool permits(std::string_view ip) const;

  // Whether an address (IPv4-mapped form) is in a range that is never public.
  static bool is_internal(const std::array<std::uint8_t, 16>& ip);

 private:
  std::vector<Network> allowed_;
};

}  // namespace thimble::proxy
