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

// The compressor's projections of every row of a step at once (its weights are read once per step):
// kv and score [n, row] (row = 2 * width when overlapping), without the position bias.
void compressor_project(const Dims& dims, const CompressorParams& p, const float* x, int n, std::vector<float>& kv,
                        std::vector<float>& score);

// Feeds one sequence's tokens at positions [pos0, pos0 + n), given their projected rows kv and score
// [n, row]; appends every entry those tokens complete to `entries` (kv rows, or indexer keys when p.hadamard).
void compress_tokens(const Dims& dims, const CompressorParams& p, const RopeTable& rope, const float* kv,
                     const float* score, int n, int64_t pos0, CompressorState& state, KvRows& entries);

}  // namespace mnemo::inference::v4
