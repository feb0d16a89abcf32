#pragma once
// Keys and values of the store's column families. Every key starts with kKeyVersion; chunk,
// snapshot and prefix values end with a SHA-256 of their bytes, checked on every read.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/inference/tokenizer.h>
#include <mnemo/memory/snapshot.h>

namespace mnemo::memory {

inline constexpr char kKeyVersion = 1;
inline constexpr size_t kChunkKeySize = 32;

// Session ids and tenants: 1 to 128 of [A-Za-z0-9._:-], so a key's separator cannot occur in them.
Status check_name(std::string_view what, std::string_view name);

std::string meta_key(std::string_view name);
std::string session_key(std::string_view session);
// Session id, a 0 separator and a big-endian number: one session's records sort together, in order.
std::string numbered_key(std::string_view session, uint64_t number);
std::string numbered_prefix(std::string_view session);
uint64_t number_of(std::string_view key);
std::string hash_key(std::string_view chunk_key);  // kv_chunks and prefixes

// SHA-256 over (model fingerprint, tenant salt, at-rest descriptor, parent chunk key, token ids).
std::string chain_key(std::string_view fingerprint, std::string_view salt, std::string_view at_rest,
                      std::string_view parent, std::span<const inference::TokenId> tokens);

struct SessionRecord {
  std::string tenant;
  int64_t created_unix_ms = 0;
  uint64_t last_seq = 0;
  uint64_t last_snapshot = 0;
};
std::string encode_session(const SessionRecord& r);
Result<SessionRecord> decode_session(std::string_view value);

struct EventRecord {
  std::string type;
  std::string payload;
  int64_t unix_ms = 0;
};
std::string encode_event(const EventRecord& r);
Result<EventRecord> decode_event(std::string_view value);

// One chunk: the tokens [from, to) it covers and the KV payload (a segment blob, or its compact
// encoding).
struct ChunkRecord {
  AtRest at_rest = AtRest::kExact;
  int64_t from = 0, to = 0;
  std::vector<inference::TokenId> tokens;
  std::string payload;
};
std::string encode_chunk(const ChunkRecord& r);
Result<ChunkRecord> decode_chunk(std::string_view value);  // verifies the hash

// A session snapshot or a shared prefix's tail: the chunk chain, then what follows the last full
// chunk.
struct SnapshotRecord {
  std::string fingerprint;
  std::string tenant;
  AtRest at_rest = AtRest::kExact;
  std::string descriptor;  // the at-rest descriptor hashed into the chunk keys
  int64_t chunk_tokens = 0;
  int64_t position = 0;
  int64_t created_unix_ms = 0;
  std::vector<std::string> chunk_keys;
  std::vector<inference::TokenId> tail_tokens;  // tokens after the last full chunk
  std::string partial;  // segment blob of those tokens (exact), empty when none
  std::string tail;     // the engine's tail blob at `position` (exact)
};
std::string encode_snapshot(const SnapshotRecord& r);
Result<SnapshotRecord> decode_snapshot(std::string_view value);  // verifies the hash

}  // namespace mnemo::memory
