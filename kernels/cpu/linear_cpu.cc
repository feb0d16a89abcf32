#include "cpu/linear_cpu.h"

#include <mnemo/kernels/cpu_features.h>
#include <mnemo/kernels/numeric.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

namespace mnemo::kernels::cpu {
namespace {

struct Tables {
  std::array<float, 256> e4m3{}, ue8m0{};
  std::array<float, 16> e2m1{};
  Tables() {
    for (int i = 0; i < 256; ++i) {
      e4m3[i] = e4m3_to_f32(static_cast<uint8_t>(i));
      ue8m0[i] = ue8m0_to_f32(static_cast<uint8_t>(i));
    }
    for (int i = 0; i < 16; ++i) e2m1[i] = e2m1_to_f32(static_cast<uint8_t>(i));
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

float weight_scale(const WeightView& w, int64_t index) {
  if (w.scale_type == ScaleType::kF32) {
    float s;
    std::memcpy(&s, static_cast<const uint8_t*>(w.scale) + 4 * index, 4);
    return s;
  }
  return tables().ue8m0[static_cast<const uint8_t*>(w.scale)[index]];
}

void linear_rows_scalar(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin, int64_t row_end,
                        float* y) {
  // One row dequantised into a transient buffer, then read once for all tokens of the step.
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(w.cols));
  for (int64_t r = row_begin; r < row_end; ++r) {
    for (int64_t k = 0; k < w.cols; ++k) row[k] = dequantised(w, r, k);
    for (int64_t t = 0; t < n_tokens; ++t) {
      y[t * w.rows + r] = dot_fixed_order(x + t * w.cols, w.cols, [&](int64_t k) { return row[k]; });
    }
  }
}

void linear_rows(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin, int64_t row_end,
                 float* y) {
#if MNEMO_HAVE_AVX2
  if (active_isa() == Isa::kAvx2) return linear_rows_avx2(x, n_tokens, w, row_begin, row_end, y);
#endif
  linear_rows_scalar(x, n_tokens, w, row_begin, row_end, y);
}

float dequantised(const WeightView& w, int64_t r, int64_t k) {
  const Tables& tb = tables();
  switch (w.type) {
    case WeightType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(w.data)[r * w.cols + k]);
    case WeightType::kF32: return static_cast<const float*>(w.data)[r * w.cols + k];
    case WeightType::kF8E4M3Block128:
      return tb.e4m3[static_cast<const uint8_t*>(w.data)[r * w.cols + k]] *
             weight_scale(w, ((w.scale_row0 + r) / 128) * ((w.cols + 127) / 128) + k / 128);
    case WeightType::kFP4E2M1Group32: {
      uint8_t b = static_cast<const uint8_t*>(w.data)[r * (w.cols / 2) + k / 2];
      return tb.e2m1[(k & 1) ? (b >> 4) : (b & 0xF)] * weight_scale(w, r * (w.cols / 32) + k / 32);
    }
  }
  return 0;
}

void linear_reference(const float* x, int64_t n_tokens, const WeightView& w, float* y) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      double s = 0;
      for (int64_t k = 0; k < w.cols; ++k) s += static_cast<double>(x[t * w.cols + k]) * dequantised(w, r, k);
      y[t * w.rows + r] = static_cast<float>(s);
    }
  }
}

}  // namespace mnemo::kernels::cpu
