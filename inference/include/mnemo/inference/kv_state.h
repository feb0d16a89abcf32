#pragma once
// A sequence's KV state as versioned blobs that memory/ stores without looking inside (spec section 3,
// DESIGN.md "KV snapshots"): append-only segments of compressed entries and indexer keys addressed by
// token range, and a tail (window rings and compressor carry) valid at one position.
#include <cstdint>
#include <string>
#include <vector>

#include <mnemo/inference/model.h>

namespace mnemo::inference {

inline constexpr uint32_t kKvFormatVersion = 1;
// Segment boundaries other than the sequence's position fall on multiples of this many tokens, so that
// every layer kind's blocks (4 and 128 tokens) end inside one segment.
inline constexpr int64_t kKvSegmentAlign = 128;

struct KvExport {
  std::string fingerprint;  // the model's, hex
  Precision precision = Precision::kF32;
  int64_t position = 0;
  // Entries completed by tokens [from, position), cut into segments at multiples of the span.
  std::vector<std::string> segments;
  std::string tail;
};

// Token range [from, to) a segment blob covers, read from its header (no full validation).
struct KvSegmentRange {
  int64_t from = 0;
  int64_t to = 0;
};
Result<KvSegmentRange> kv_segment_range(std::string_view segment);

}  // namespace mnemo::inference
