#pragma once
// The KV compressor: pools each block of `ratio` tokens into one entry with a per-channel softmax over
// learned scores (overlapping two blocks for ratio 4), then norm, RoPE at the block's first position and,
// inside the indexer, a Hadamard rotation.
#include <cstdint>
#include <vector>

#include "v4_math.h"
#include "v4_params.h"
#include "v4_state.h"

namespace mnemo::inference::v4 {

// Feeds tokens at positions [pos0, pos0 + n) whose attn_norm outputs are x [n, d]; appends every entry
// those tokens complete to `entries` ([*, p.width]).
void compress_tokens(const Dims& dims, const CompressorParams& p, const RopeTable& rope, const float* x, int n,
                     int d, int64_t pos0, CompressorState& state, std::vector<float>& entries);

}  // namespace mnemo::inference::v4
