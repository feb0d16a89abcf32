#include <mnemo/memory/keys.h>

#include <tuple>

#include <openssl/rand.h>

#include <algorithm>
#include <memory>

#include <mnemo/base/binary.h>
#include <mnemo/base/sha256.h>

#include "store_impl.h"

namespace mnemo::memory {
namespace {

constexpr uint8_t kRecordVersion = 1;

std::string key_prefix() { return meta_key("key/"); }
std::string record_key(std::string_view hash_hex) { return meta_key("key/" + std::string(hash_hex)); }

std::string encode_record(const ApiKeyInfo& info) {
  BinaryWriter w;
  w.put<uint8_t>(kRecordVersion).put_string(info.id).put_string(info.tenant);
  w.put<int64_t>(info.created_unix_ms);
  return w.take();
}

Result<ApiKeyInfo> decode_record(std::string_view value) {
  BinaryReader r(value);
  uint8_t version = 0;
  std::string_view id, tenant;
  ApiKeyInfo info;
  if (!r.get(version) || version != kRecordVersion || !r.get_string(id) || !r.get_string(tenant) ||
      !r.get(info.created_unix_ms) || !r.done()) {
    return Status::corruption("an API key record of the store is malformed");
  }
  info.id = id;
  info.tenant = tenant;
  return info;
}

// Visits every key record as (meta key, info); stops early when visit returns false.
template <typename Visit>
Status scan_keys(const Store::Impl& s, Visit visit) {
  const std::string prefix = key_prefix();
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions(), s.meta));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(prefix)) break;
    auto info = decode_record(std::string_view(it->value().data(), it->value().size()));
    if (!info) return info.status();
    if (!visit(key, *info)) break;
  }
  return from_rocksdb(it->status(), "reading the API keys of store " + s.dir);
}

}  // namespace

Result<NewApiKey> add_api_key(Store& store, std::string_view tenant) {
  const Store::Impl& s = store.impl();
  MNEMO_RETURN_IF_ERROR(s.writable());
  MNEMO_RETURN_IF_ERROR(check_name("tenant", tenant));
  Digest secret{};
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1) {
    return Status::internal("cannot draw random bytes for an API key");
  }
  NewApiKey out;
  out.key = std::string(kApiKeyPrefix) + to_hex(secret);
  const std::string hash = to_hex(sha256(out.key));
  out.info = {"key_" + hash.substr(0, 12), std::string(tenant), unix_ms_now()};
  rocksdb::WriteBatch batch;
  batch.Put(s.meta, record_key(hash), encode_record(out.info));
  MNEMO_RETURN_IF_ERROR(s.write(batch));
  return out;
}

Result<std::vector<ApiKeyInfo>> list_api_keys(const Store& store) {
  std::vector<ApiKeyInfo> out;
  MNEMO_RETURN_IF_ERROR(scan_keys(store.impl(), [&](std::string_view, const ApiKeyInfo& info) {
    out.push_back(info);
    return true;
  }));
  // Oldest first; keys made in the same millisecond by tenant, then id, so the order is stable.
  std::sort(out.begin(), out.end(), [](const ApiKeyInfo& a, const ApiKeyInfo& b) {
    return std::tie(a.created_unix_ms, a.tenant, a.id) < std::tie(b.created_unix_ms, b.tenant, b.id);
  });
  return out;
}

Status revoke_api_key(Store& store, std::string_view id) {
  const Store::Impl& s = store.impl();
  MNEMO_RETURN_IF_ERROR(s.writable());
  std::vector<std::string> doomed;
  MNEMO_RETURN_IF_ERROR(scan_keys(s, [&](std::string_view key, const ApiKeyInfo& info) {
    if (info.id == id) doomed.emplace_back(key);
    return true;
  }));
  if (doomed.empty()) {
    return Status::not_found("no API key '" + std::string(id) + "' in store " + s.dir);
  }
  rocksdb::WriteBatch batch;
  for (const std::string& key : doomed) batch.Delete(s.meta, key);
  return s.write(batch);
}

Result<std::optional<ApiKeyInfo>> find_api_key(const Store& store, std::string_view key) {
  if (!key.starts_with(kApiKeyPrefix)) return std::optional<ApiKeyInfo>();
  const Store::Impl& s = store.impl();
  auto v = s.get(s.meta, record_key(to_hex(sha256(key))));
  if (!v) return v.status();
  if (!*v) return std::optional<ApiKeyInfo>();
  auto info = decode_record(**v);
  if (!info) return info.status();
  return std::optional<ApiKeyInfo>(std::move(info).value());
}

}  // namespace mnemo::memory
