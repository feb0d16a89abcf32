#pragma once
// One query row of multi-query attention, the V4 way: every head attends to the same keys and the key is
// also the value. score[h, j] = q_h . key_j * scale (a fixed-order dot, numeric.h); p = softmax over j with
// a per-head sink logit that enters only the denominator; out_h = sum_j p[h, j] key_j, accumulated with
// fma in increasing j. Each row's bits depend on nothing but its own inputs.
#include <cstdint>

#include <mnemo/base/status.h>

namespace mnemo::kernels {

// q, out: [n_heads, dim]; keys: n_keys pointers to dim floats; sink: [n_heads].
Status attend_mqa(const float* q, int n_heads, int dim, const float* const* keys, int64_t n_keys, const float* sink,
                  float scale, float* out);

}  // namespace mnemo::kernels
