#pragma once
// CPU kernels of the linear op. Every path computes each output element as numeric.h's
// dot_fixed_order of the dequantised weights, so the paths agree bit for bit.
#include <cstdint>

#include <mnemo/kernels/weight_view.h>

namespace mnemo::kernels::cpu {

// Rows [row_begin, row_end) of y = x W^T on the path chosen at start-up (cpu_features.h).
void linear_rows(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin,
                 int64_t row_end, float* y);

// The portable fallback: one weight row dequantised at a time, then one fixed-order dot per token.
void linear_rows_scalar(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin,
                        int64_t row_end, float* y);

// AVX2+FMA+F16C: dequantises in registers; a register-tiled GEMV for a few tokens, and for many tokens a
// GEMM over transient f32 panels of weight rows. Only call when isa_supported(Isa::kAvx2).
void linear_rows_avx2(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin,
                      int64_t row_end, float* y);

// W[r, k] as a float (the scalar definition of every weight format): the code's value times its scale.
float dequantised(const WeightView& w, int64_t r, int64_t k);

// Scale number `index` of a quantised weight (its scale tensor in row-major order) as a float.
float weight_scale(const WeightView& w, int64_t index);

// The plain scalar reference the op tests compare against: a straight double-precision sum.
void linear_reference(const float* x, int64_t n_tokens, const WeightView& w, float* y);

}  // namespace mnemo::kernels::cpu
