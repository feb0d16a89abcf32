#pragma once
// Which peer addresses http_get may connect to, and which hosts a URL may name.
#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

namespace mnemo::tools::internal {

// Why the address is not public ("a loopback address"), or empty when it is public. IPv4-mapped
// and NAT64 IPv6 addresses are judged by the IPv4 address they carry.
std::string non_public_reason(const sockaddr* addr);

// The numeric form of the address ("127.0.0.1", "::1").
std::string address_text(const sockaddr* addr);

// "example.com" matches itself, "*.example.com" its subdomains, "*" everything; case-insensitive.
bool host_allowed(std::string_view host, const std::vector<std::string>& patterns);

}  // namespace mnemo::tools::internal
