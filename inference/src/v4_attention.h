#pragma once
// One V4 attention sublayer over a chunk of consecutive tokens of one sequence: low-rank queries, one
// shared rotated kv vector per token, keys = the raw window plus compressed entries (all of them for
// HCA, the lightning indexer's top-k for CSA), sink logits, grouped output projection.
#include <cstdint>
#include <span>

#include "v4_dims.h"
#include "v4_math.h"
#include "v4_params.h"
#include "v4_state.h"

namespace mnemo::inference::v4 {

// Rows [row0, row0 + n) of a step belong to one sequence, at positions [pos0, pos0 + n).
struct Segment {
  LayerState* state;
  int64_t pos0;
  int row0;
  int n;
};

// x: attn_norm outputs [n, d] of every row of the step; out: [n, d]. Projections run over all rows at
// once; each segment's rows attend to its own state.
void attention_forward(const Dims& dims, const AttentionParams& p, const RopeTable& rope, const float* x, int n,
                       std::span<const Segment> segments, float* out);

}  // namespace mnemo::inference::v4
