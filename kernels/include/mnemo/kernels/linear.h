#pragma once
// y[t, r] = sum_k x[t, k] * W[r, k]: the matmul behind every projection of the model.
// Batch invariance: each output element is reduced in one fixed order that depends only on cols,
// never on the number of rows t or on threading, so a sequence's numbers do not depend on its batch.
#include <cstdint>

#include <mnemo/base/status.h>
#include <mnemo/kernels/weight_view.h>

namespace mnemo::kernels {

// x: [n_tokens, w.cols] row-major; y: [n_tokens, w.rows] row-major.
Status linear(const float* x, int64_t n_tokens, const WeightView& w, float* y);

// Rows [row_begin, row_end) of W only; y still has w.rows columns per token.
void linear_rows(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin,
                 int64_t row_end, float* y);

}  // namespace mnemo::kernels
