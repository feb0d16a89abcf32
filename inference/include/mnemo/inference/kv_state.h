#pragma once
// A sequence's KV state as versioned blobs that memory/ stores without looking inside (spec section 3,
// DESIGN.md "KV snapshots"): append-only segments of compressed entries and indexer keys addressed by
// token range, and a tail (window rings and compressor carry) valid at one position.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/inference/model.h>

namespace mnemo::inference {

// Version 2: rows as the cache holds them (fp32, or the serving layout at `serving` precision); version 1
// (fp32 rows in every precision) is refused.
inline constexpr uint32_t kKvFormatVersion = 2;
// Segment boundaries other than the sequence's position fall on multiples of this many tokens, so that
// every layer kind's blocks (4 and 128 tokens) end inside one segment.
inline constexpr int64_t kKvSegmentAlign = 128;

struct KvExport {
  std::string fingerprint;  // the model's, hex
  Precision precision = Precision::kF32;
  int64_t position = 0;
  int64_t from = 0;  // the first token the segments cover
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

// Typed contents of KV blobs, for at-rest codecs (memory/'s compact mode) that change the numbers but
// never the layout. Layers are the model's main layers in order; floats are row-major. Reading decodes
// the stored rows; writing stores floats as the precision's cache would (at `serving`, rounded into the
// serving layout), so values read from a blob are written back unchanged.
struct KvSegmentLayer {
  int ratio = 0;                  // the layer's compress ratio: 0 (window only), 4 (CSA) or 128 (HCA)
  std::vector<float> entries;     // [n_entries, head_dim]: entries completed by tokens [from, to)
  std::vector<float> index_keys;  // [n_entries, index_head_dim] on CSA layers, else empty
};
struct KvSegmentData {
  int64_t from = 0;
  int64_t to = 0;
  std::vector<KvSegmentLayer> layers;
};

// One layer's compressor carry: the block being filled and, for the overlapping compressor, the previous one.
struct KvCarry {
  std::vector<float> kv, score, prev_kv, prev_score;
};
struct KvTailLayer {
  std::vector<float> ring;  // [sliding_window, head_dim], position p in slot p % window; empty at position 0
  KvCarry compressor, index_compressor;
};
struct KvTailData {
  int64_t position = 0;
  std::vector<KvTailLayer> layers;
};

// Reads a segment or tail blob of `model` (header and every size checked as import_state does).
Result<KvSegmentData> read_kv_segment(const Model& model, std::string_view segment);
Result<KvTailData> read_kv_tail(const Model& model, std::string_view tail);
// Writes blobs of `model` from typed contents; a size that does not fit the config is refused.
Result<std::string> write_kv_segment(const Model& model, const KvSegmentData& data);
Result<std::string> write_kv_tail(const Model& model, const KvTailData& data);

}  // namespace mnemo::inference
