#pragma once
// A sequence's KV state in the V4 model (spec section 3): per layer the window ring of raw kv, the
// compressed entries and indexer keys (append-only), and the compressors' in-progress blocks. Entries,
// ring and keys are held in the layout of the precision (v4_kv_rows.h): at `serving`, the serving layout
// of spec section 3, byte for byte what a snapshot stores.
#include <cstdint>
#include <vector>

namespace mnemo::inference::v4 {

// The rows of the block being filled, and for the overlapping compressor the previous full block.
struct CompressorState {
  std::vector<float> kv, score;            // [n_rows, row_width] of the current block
  std::vector<float> prev_kv, prev_score;  // [ratio, row_width]; empty before the first full block
};

// Rows of one layout, each `row_bytes` in `data` and, for layouts with a separate scale plane (FP4
// keys), `scale_bytes` in `scales`.
struct KvRows {
  int64_t row_bytes = 0;
  int64_t scale_bytes = 0;
  std::vector<uint8_t> data, scales;

  int64_t size() const { return row_bytes == 0 ? 0 : static_cast<int64_t>(data.size()) / row_bytes; }
  const uint8_t* row(int64_t i) const { return data.data() + i * row_bytes; }
  uint8_t* row(int64_t i) { return data.data() + i * row_bytes; }
  const uint8_t* scale(int64_t i) const { return scales.data() + i * scale_bytes; }
  int64_t bytes() const { return static_cast<int64_t>(data.size() + scales.size()); }
};

struct LayerState {
  KvRows ring;        // [window] kv rows; position p lives in slot p % window (empty before the first token)
  KvRows entries;     // [n_entries] compressed kv rows
  KvRows index_keys;  // [n_entries] indexer keys (CSA layers)
  CompressorState compressor, index_compressor;
};

struct SequenceState {
  int64_t pos = 0;  // tokens processed so far
  std::vector<LayerState> layers;
  const void* owner = nullptr;  // the Model that made it: state is only valid for that model
  bool mtp = false;             // the MTP block's own cache
};

}  // namespace mnemo::inference::v4
