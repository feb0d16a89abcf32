#pragma once
// The V4 mixture of experts: sqrt-softplus scores, hash routing (first layers) or biased top-k,
// normalised and scaled weights, SwiGLU experts with the clamp, plus the shared expert.
#include <cstdint>

#include "v4_dims.h"
#include "v4_params.h"

namespace mnemo::inference::v4 {

// x: ffn_norm outputs [n, d]; tokens: the ids at those positions (hash routing); out: [n, d].
void moe_forward(const Dims& dims, const MoeParams& p, const float* x, const int32_t* tokens, int n, float* out);

}  // namespace mnemo::inference::v4
