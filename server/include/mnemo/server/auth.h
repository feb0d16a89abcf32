#pragma once
// Bearer API keys: an Authenticator maps a key to its tenant. The server asks it for every request
// to a route that is not open; a missing or unknown key is 401.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <mnemo/base/status.h>
#include <mnemo/memory/store.h>

namespace mnemo::server {

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // The key's tenant, nullopt for an unknown (or revoked) key; an error when the lookup failed.
  virtual Result<std::optional<std::string>> tenant(std::string_view key) const = 0;
};

// Keys of the store (memory/keys.h), looked up per request; the store must outlive it.
std::shared_ptr<const Authenticator> make_store_authenticator(const memory::Store& store);

// The tenant requests get when the server runs without keys (loopback only).
inline constexpr std::string_view kLocalTenant = "local";

}  // namespace mnemo::server
