#pragma once
// A sequence's KV state in the V4 model (spec section 3): per layer the window ring of raw kv, the
// compressed entries and indexer keys (append-only), and the compressors' in-progress blocks.
#include <cstdint>
#include <vector>

namespace mnemo::inference::v4 {

// The rows of the block being filled, and for the overlapping compressor the previous full block.
struct CompressorState {
  std::vector<float> kv, score;            // [n_rows, row_width] of the current block
  std::vector<float> prev_kv, prev_score;  // [ratio, row_width]; empty before the first full block
};

struct LayerState {
  std::vector<float> ring;         // [window, head_dim]; position p lives in slot p % window
  std::vector<float> entries;      // [n_entries, head_dim]
  std::vector<float> index_keys;   // [n_entries, index_dim] (CSA layers)
  CompressorState compressor, index_compressor;
};

struct SequenceState {
  int64_t pos = 0;  // tokens processed so far
  std::vector<LayerState> layers;
  const void* owner = nullptr;  // the Model that made it: state is only valid for that model
  bool mtp = false;             // the MTP block's own cache
};

}  // namespace mnemo::inference::v4
