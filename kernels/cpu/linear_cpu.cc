#include "cpu/linear_cpu.h"

#include <mnemo/kernels/numeric.h>

namespace mnemo::kernels::cpu {
namespace {

template <typename Load>
void rows_loop(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin, int64_t row_end,
               float* y, Load load) {
  // Token-inner loop: a weight row is read from memory once for all tokens of the step.
  for (int64_t r = row_begin; r < row_end; ++r) {
    for (int64_t t = 0; t < n_tokens; ++t) {
      y[t * w.rows + r] = dot_fixed_order(x + t * w.cols, w.cols, [&](int64_t k) { return load(r, k); });
    }
  }
}

}  // namespace

void linear_rows(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin,
                 int64_t row_end, float* y) {
  if (w.type == WeightType::kBF16) {
    const auto* p = static_cast<const uint16_t*>(w.data);
    rows_loop(x, n_tokens, w, row_begin, row_end, y,
              [&](int64_t r, int64_t k) { return bf16_to_f32(p[r * w.cols + k]); });
  } else {
    const auto* p = static_cast<const float*>(w.data);
    rows_loop(x, n_tokens, w, row_begin, row_end, y, [&](int64_t r, int64_t k) { return p[r * w.cols + k]; });
  }
}

void linear_reference(const float* x, int64_t n_tokens, const WeightView& w, float* y) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      double s = 0;
      for (int64_t k = 0; k < w.cols; ++k) {
        float wv = w.type == WeightType::kBF16 ? bf16_to_f32(static_cast<const uint16_t*>(w.data)[r * w.cols + k])
                                                : static_cast<const float*>(w.data)[r * w.cols + k];
        s += static_cast<double>(x[t * w.cols + k]) * wv;
      }
      y[t * w.rows + r] = static_cast<float>(s);
    }
  }
}

}  // namespace mnemo::kernels::cpu
