#pragma once
// KV snapshots at rest (DESIGN.md "KV snapshots"): the engine's append-only segments cut into
// chunks of a fixed token span, content-addressed by a hash chain, plus a per-snapshot tail; two
// at-rest modes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/inference/model.h>

namespace mnemo::memory {

// kExact stores the engine's state bit for bit; kCompact quantises full chunks (the tail stays
// exact).
enum class AtRest : uint8_t { kExact = 1, kCompact = 2 };
std::string_view at_rest_name(AtRest mode);
Result<AtRest> parse_at_rest(std::string_view name);  // "exact", "compact"

// The lossy codec of compact chunks: symmetric groups of `group` values along a row with one bf16
// scale each, codes of `bits` bits, then zstd over the codes as the entropy coder (CacheGen/KVTC
// style).
struct CompactParams {
  int entry_bits = 4;  // compressed entries (nope and rope dims)
  int index_bits =
      6;  // CSA indexer keys: they pick the top-k entries, and a flipped pick costs more
  int group = 32;
  int zstd_level = 9;
  Status validate() const;
  // Goes into every compact chunk key, so chunks of different codecs never alias.
  std::string descriptor() const;
};

// A snapshot as the store describes it.
struct SnapshotInfo {
  uint64_t number = 0;  // per session, from 1
  std::string fingerprint;
  std::string tenant;
  AtRest at_rest = AtRest::kExact;
  int64_t chunk_tokens = 0;
  int64_t position = 0;
  int64_t created_unix_ms = 0;
  std::vector<std::string> chunk_keys;  // 32 raw bytes each, in token order
};

// A sequence rebuilt from the store, with the token ids it has seen.
struct Restored {
  inference::Sequence sequence;
  std::vector<inference::TokenId> tokens;
  SnapshotInfo info;
};

}  // namespace mnemo::memory
