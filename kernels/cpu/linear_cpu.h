#pragma once
// CPU kernels of the linear op.
#include <cstdint>

#include <mnemo/kernels/weight_view.h>

namespace mnemo::kernels::cpu {

// Rows [row_begin, row_end) of y = x W^T for F32 and BF16 weights, in the fixed reduction order.
void linear_rows(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin,
                 int64_t row_end, float* y);

// The plain scalar reference the op tests compare against: a straight double-precision sum.
void linear_reference(const float* x, int64_t n_tokens, const WeightView& w, float* y);

}  // namespace mnemo::kernels::cpu
