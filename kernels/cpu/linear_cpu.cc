#include "cpu/linear_cpu.h"

#include <mnemo/kernels/numeric.h>

#include <algorithm>
#include <array>
#include <cstring>

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

float scale_at(const WeightView& w, int64_t index) {
  if (w.scale_type == ScaleType::kF32) {
    float s;
    std::memcpy(&s, static_cast<const uint8_t*>(w.scale) + 4 * index, 4);
    return s;
  }
  return tables().ue8m0[static_cast<const uint8_t*>(w.scale)[index]];
}

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

// Quantised rows: a fixed-order dot product per scale group, times the group's scale, groups summed in order.
template <typename Load>
void grouped_rows(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin, int64_t row_end,
                  float* y, int64_t group, Load load, auto scale_index) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * w.cols;
      float acc = 0;
      for (int64_t k0 = 0; k0 < w.cols; k0 += group) {
        int64_t len = std::min(group, w.cols - k0);
        float part = dot_fixed_order(xt + k0, len, [&](int64_t k) { return load(r, k0 + k); });
        acc += part * scale_at(w, scale_index(r, k0));
      }
      y[t * w.rows + r] = acc;
    }
  }
}

}  // namespace

void linear_rows(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin, int64_t row_end,
                 float* y) {
  const Tables& tb = tables();
  switch (w.type) {
    case WeightType::kBF16: {
      const auto* p = static_cast<const uint16_t*>(w.data);
      rows_loop(x, n_tokens, w, row_begin, row_end, y, [&](int64_t r, int64_t k) { return bf16_to_f32(p[r * w.cols + k]); });
      break;
    }
    case WeightType::kF32: {
      const auto* p = static_cast<const float*>(w.data);
      rows_loop(x, n_tokens, w, row_begin, row_end, y, [&](int64_t r, int64_t k) { return p[r * w.cols + k]; });
      break;
    }
    case WeightType::kF8E4M3Block128: {
      const auto* p = static_cast<const uint8_t*>(w.data);
      const int64_t scale_cols = (w.cols + 127) / 128;
      grouped_rows(x, n_tokens, w, row_begin, row_end, y, 128,
                   [&](int64_t r, int64_t k) { return tb.e4m3[p[r * w.cols + k]]; },
                   [&](int64_t r, int64_t k0) { return ((w.scale_row0 + r) / 128) * scale_cols + k0 / 128; });
      break;
    }
    case WeightType::kFP4E2M1Group32: {
      const auto* p = static_cast<const uint8_t*>(w.data);
      const int64_t row_bytes = w.cols / 2;
      grouped_rows(x, n_tokens, w, row_begin, row_end, y, 32,
                   [&](int64_t r, int64_t k) {
                     uint8_t b = p[r * row_bytes + k / 2];
                     return tb.e2m1[(k & 1) ? (b >> 4) : (b & 0xF)];  // low nibble = even element
                   },
                   [&](int64_t r, int64_t k0) { return r * (w.cols / 32) + k0 / 32; });
      break;
    }
  }
}

float dequantised(const WeightView& w, int64_t r, int64_t k) {
  const Tables& tb = tables();
  switch (w.type) {
    case WeightType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(w.data)[r * w.cols + k]);
    case WeightType::kF32: return static_cast<const float*>(w.data)[r * w.cols + k];
    case WeightType::kF8E4M3Block128:
      return tb.e4m3[static_cast<const uint8_t*>(w.data)[r * w.cols + k]] *
             scale_at(w, ((w.scale_row0 + r) / 128) * ((w.cols + 127) / 128) + k / 128);
    case WeightType::kFP4E2M1Group32: {
      uint8_t b = static_cast<const uint8_t*>(w.data)[r * (w.cols / 2) + k / 2];
      return tb.e2m1[(k & 1) ? (b >> 4) : (b & 0xF)] * scale_at(w, r * (w.cols / 32) + k / 32);
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
