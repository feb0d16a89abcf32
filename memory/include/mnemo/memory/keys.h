#pragma once
// API keys of a store (the server's auth): a key is shown once when it is made; the store keeps only
// its SHA-256, the tenant it belongs to and when it was made, in the meta column family under
// "key/". A key id (a prefix of the hash) names a key in lists and revocations.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/memory/store.h>

namespace mnemo::memory {

// What every key starts with, so a leaked one is recognisable.
inline constexpr std::string_view kApiKeyPrefix = "mnemo_sk_";

struct ApiKeyInfo {
  std::string id;  // "key_" + 12 hex digits of the key's SHA-256
  std::string tenant;
  int64_t created_unix_ms = 0;
};

struct NewApiKey {
  std::string key;  // "mnemo_sk_" + 64 hex digits of 32 random bytes; not stored
  ApiKeyInfo info;
};

// Makes a key for `tenant` (1 to 128 of [A-Za-z0-9._:-]) in one synced write.
Result<NewApiKey> add_api_key(Store& store, std::string_view tenant);
// Every key of the store, oldest first.
Result<std::vector<ApiKeyInfo>> list_api_keys(const Store& store);
// Deletes the key with this id; not_found when there is none.
Status revoke_api_key(Store& store, std::string_view id);
// The key's record, or nullopt when the store has no such key (unknown or revoked).
Result<std::optional<ApiKeyInfo>> find_api_key(const Store& store, std::string_view key);

}  // namespace mnemo::memory
