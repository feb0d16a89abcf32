#include "address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace mnemo::tools::internal {
namespace {

std::string v4_reason(uint32_t a) {
  auto in = [a](uint32_t net, int bits) {
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  if (in(0x7F000000, 8)) return "a loopback address";
  if (in(0x0A000000, 8) || in(0xAC100000, 12) || in(0xC0A80000, 16))
    return "a private address";
  if (in(0xA9FE0000, 16)) return "a link-local address";
  if (in(0x64400000, 10)) return "a shared (carrier-grade NAT) address";
  if (in(0x00000000, 8)) return "a 'this network' address";
  if (in(0xC0000000, 24) || in(0xC0000200, 24) || in(0xC6336400, 24) || in(0xCB007100, 24) ||
      in(0xC6120000, 15))
    return "a reserved (special-purpose) address";
  if (in(0xE0000000, 4)) return "a multicast address";
  if (in(0xF0000000, 4)) return "a reserved (special-purpose) address";
  return {};
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string non_public_reason(const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return v4_reason(ntohl(in->sin_addr.s_addr));
  }
  if (addr->sa_family != AF_INET6) return "not an internet address";
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
  const uint8_t* b = in6->sin6_addr.s6_addr;
  auto embedded_v4 = [b] {
    return (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | b[15];
  };
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  static const uint8_t kNat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(b, kMapped, 12) == 0 || std::memcmp(b, kNat64, 12) == 0)
    return v4_reason(embedded_v4());
  if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return "a loopback address";
  if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) return "the unspecified address";
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return "a link-local address";
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return "a site-local address";
  if ((b[0] & 0xFE) == 0xFC) return "a private (unique local) address";
  if (b[0] == 0xFF) return "a multicast address";
  // Only global unicast (2000::/3) is public; the rest of the space is reserved.
  if ((b[0] & 0xE0) != 0x20) return "a reserved (special-purpose) address";
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8) return "a documentation address";
  return {};
}

std::string address_text(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof buf);
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof buf);
  } else {
    return "?";
  }
  return buf;
}

bool host_allowed(std::string_view host, const std::vector<std::string>& patterns) {
  std::string h = lower(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  while (!h.empty() && h.back() == '.') h.pop_back();
  for (const std::string& raw : patterns) {
    std::string p = lower(raw);
    if (p == "*" || p == h) return true;
    if (p.size() > 2 && p.compare(0, 2, "*.") == 0) {
      std::string suffix = p.substr(1);
      if (h.size() > suffix.size() && h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0)
        return true;
    }
  }
  return false;
}

}  // namespace mnemo::tools::internal
