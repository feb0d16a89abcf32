#pragma once
// One query row of multi-query attention, the V4 way: every head attends to the same keys and the key is
// also the value. score[h, j] = q_h . key_j * scale (a fixed-order dot, numeric.h); p = softmax over j with
// a per-head sink logit that enters only the denominator; out_h = sum_j p[h, j] key_j, accumulated with
// fma in increasing j. Each row's bits depend on nothing but its own inputs.
#include <cstdint>

#include <mnemo/base/status.h>
#include <mnemo/kernels/kv_quant.h>

namespace mnemo::kernels {

// q, out: [n_heads, dim]; keys: n_keys pointers to dim floats; sink: [n_heads].
Status attend_mqa(const float* q, int n_heads, int dim, const float* const* keys, int64_t n_keys, const float* sink,
                  float scale, float* out);

// The same over keys stored in the serving layout (kv_quant.h's Fp8KvRow records of `row.dim` dims),
// decoded in registers: bit for bit attend_mqa over the decoded keys.
Status attend_mqa_fp8(const float* q, int n_heads, const Fp8KvRow& row, const uint8_t* const* keys, int64_t n_keys,
                      const float* sink, float scale, float* out);

}  // namespace mnemo::kernels
