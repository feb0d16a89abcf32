#pragma once
// Register tiles of 8-lane fixed-order dot products (numeric.h's dot_fixed_order), shared by the AVX2
// kernels: a tile only decides which accumulators live together, never a reduction order.
#include <immintrin.h>

#include <cstdint>

namespace mnemo::kernels::cpu {

// ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)), as dot_fixed_order.
inline float reduce8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 u = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(u, _mm_movehdup_ps(u)));
}

// The last partial block of 8: x and w padded with zeros, as the definition pads them.
template <int RT, int TT, class Dec>
inline void tail_block(const Dec& dec, const float* const* xs, int64_t r0, int64_t k, int64_t cols,
                       __m256 (&acc)[RT][TT]) {
  alignas(32) float wt[8], xt[8];
  for (int r = 0; r < RT; ++r) {
    for (int i = 0; i < 8; ++i) wt[i] = k + i < cols ? dec.at(r0 + r, k + i) : 0.0f;
    const __m256 wv = _mm256_load_ps(wt);
    for (int t = 0; t < TT; ++t) {
      for (int i = 0; i < 8; ++i) xt[i] = k + i < cols ? xs[t][k + i] : 0.0f;
      acc[r][t] = _mm256_fmadd_ps(_mm256_load_ps(xt), wv, acc[r][t]);
    }
  }
}

constexpr bool kPrefetch = true;

// RT rows x TT tokens straight from the stored weights: each row's 32-column chunk is dequantised once
// into 4 registers and used for the TT tokens (decode: few tokens, weights read from memory once).
template <int RT, int TT, class Dec>
void direct_tile(const Dec& dec, const float* x, int64_t cols, int64_t r0, int64_t t0, int64_t ldy, float* y) {
  __m256 acc[RT][TT];
  const float* xs[TT];
  for (int t = 0; t < TT; ++t) xs[t] = x + (t0 + t) * cols;
  for (int r = 0; r < RT; ++r) {
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 32 <= cols; k += 32) {
    for (int r = 0; r < RT; ++r) {
      // The next row tile's same columns: keeps enough lines in flight to stream at memory bandwidth.
      if constexpr (kPrefetch) dec.prefetch(r0 + RT + r, k);
      __m256 w[4];
      dec.load32(r0 + r, k, w);
      for (int t = 0; t < TT; ++t) {
        for (int j = 0; j < 4; ++j) acc[r][t] = _mm256_fmadd_ps(_mm256_loadu_ps(xs[t] + k + 8 * j), w[j], acc[r][t]);
      }
    }
  }
  for (; k + 8 <= cols; k += 8) {
    for (int r = 0; r < RT; ++r) {
      const __m256 w = dec.load8(r0 + r, k);
      for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_fmadd_ps(_mm256_loadu_ps(xs[t] + k), w, acc[r][t]);
    }
  }
  if (k < cols) tail_block<RT, TT>(dec, xs, r0, k, cols, acc);
  for (int r = 0; r < RT; ++r) {
    for (int t = 0; t < TT; ++t) y[(t0 + t) * ldy + r0 + r] = reduce8(acc[r][t]);
  }
}

// RT rows x TT tokens from f32 weights (a packed panel, or F32 weights as stored): 8 columns at a time,
// 12 accumulators + 3 weight registers for the 3x4 tile (prefill: compute-bound).
// `prefetch`: the rows come from memory (the first token tile over stored weights), so fetch the next
// row tile's lines ahead, as direct_tile does.
template <int RT, int TT, class Dec>
void panel_tile(const Dec& dec, const float* x, int64_t cols, int64_t r0, int64_t t0, int64_t y_r0, int64_t ldy,
                float* y, bool prefetch = false) {
  __m256 acc[RT][TT];
  const float* xs[TT];
  for (int t = 0; t < TT; ++t) xs[t] = x + (t0 + t) * cols;
  for (int r = 0; r < RT; ++r) {
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 8 <= cols; k += 8) {
    if constexpr (requires { dec.prefetch(r0, k); }) {
      if (prefetch && k % 32 == 0) {
        for (int r = 0; r < RT; ++r) dec.prefetch(r0 + RT + r, k);
      }
    }
    __m256 w[RT];
    for (int r = 0; r < RT; ++r) w[r] = dec.load8(r0 + r, k);
    for (int t = 0; t < TT; ++t) {
      const __m256 xv = _mm256_loadu_ps(xs[t] + k);
      for (int r = 0; r < RT; ++r) acc[r][t] = _mm256_fmadd_ps(xv, w[r], acc[r][t]);
    }
  }
  if (k < cols) tail_block<RT, TT>(dec, xs, r0, k, cols, acc);
  for (int r = 0; r < RT; ++r) {
    for (int t = 0; t < TT; ++t) y[(t0 + t) * ldy + y_r0 + r] = reduce8(acc[r][t]);
  }
}

}  // namespace mnemo::kernels::cpu
