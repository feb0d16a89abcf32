#pragma once
// Manifold-constrained hyper-connections: hc_mult residual streams per token, mixed around every
// sublayer with a Sinkhorn-normalised (doubly stochastic) matrix, and collapsed by the hc head.
#include "v4_dims.h"
#include "v4_params.h"

namespace mnemo::inference::v4 {

// X: [n, hc, d]. u: [n, d] the sublayer input; post: [n, hc]; comb: [n, hc, hc] as [src, dst].
void hc_pre(const Dims& dims, const HcParams& p, const float* X, int n, float* u, float* post, float* comb);
// X_out[k] = post_k * y + sum_j comb[j, k] * X[j]. X_out may not alias X.
void hc_post(const Dims& dims, const float* X, const float* y, const float* post, const float* comb, int n,
             float* X_out);
// h: [n, d], the weighted sum of the streams that feeds the final norm.
void hc_head(const Dims& dims, const HcParams& p, const float* X, int n, float* h);

}  // namespace mnemo::inference::v4
