#pragma once
// CPU kernels of the linear op.
#include <cstdint>

#include <mnemo/kernels/weight_view.h>

namespace mnemo::kernels::cpu {

// Rows [row_begin, row_end) of y = x W^T, in the fixed reduction order; FP8 and FP4 weights are
// dequantised in registers, one scale group at a time.
void linear_rows(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin,
                 int64_t row_end, float* y);

// W[r, k] as a float (the scalar definition of every weight format).
float dequantised(const WeightView& w, int64_t r, int64_t k);

// The plain scalar reference the op tests compare against: a straight double-precision sum.
void linear_reference(const float* x, int64_t n_tokens, const WeightView& w, float* y);

}  // namespace mnemo::kernels::cpu
