// attend_mqa with AVX2+FMA: scores as a register-tiled GEMM of heads x keys (the keys are shared by all
// heads, so each is read once per 4 heads), the weighted sum 16 dims x 4 heads at a time.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "cpu/attention_cpu.h"
#include "cpu/gemm_tiles_avx2.h"

namespace mnemo::kernels::cpu {
namespace {

// Keys as the rows of a weight matrix.
struct KeyRows {
  const float* const* keys;
  __m256 load8(int64_t r, int64_t k) const { return _mm256_loadu_ps(keys[r] + k); }
  float at(int64_t r, int64_t k) const { return keys[r][k]; }
};

// Keys in the serving layout (Fp8KvRow records): E4M3 codes re-biased into f16 (value / 256, as the FP8
// weight decoder does) times 256 times the block's scale, both powers of two; rope dims as stored (fp32,
// or bf16 widened).
struct Fp8KeyRows {
  const uint8_t* const* keys;
  int nope, scales_offset;
  bool rope_bf16;
  static float pow2(int e) {
    float f;
    const uint32_t bits = static_cast<uint32_t>(e) << 23;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  __m256 load8(int64_t r, int64_t k) const {
    const uint8_t* rec = keys[r];
    if (k >= nope && !rope_bf16) return _mm256_loadu_ps(reinterpret_cast<const float*>(rec + nope) + (k - nope));
    if (k >= nope) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + nope + 2 * (k - nope)));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(rec + k));
    const __m128i f16 = _mm_and_si128(_mm_slli_epi16(_mm_cvtepi8_epi16(b), 7), _mm_set1_epi16(static_cast<short>(0xBFFF)));
    const int e = rec[scales_offset + k / 64];  // 2^(e - 127)
    const __m256 v = _mm256_cvtph_ps(f16);
    if (e + 8 <= 254) return _mm256_mul_ps(v, _mm256_set1_ps(pow2(e + 8)));
    return _mm256_mul_ps(_mm256_mul_ps(v, _mm256_set1_ps(256.0f)), _mm256_set1_ps(pow2(e)));
  }
  float at(int64_t r, int64_t k) const {
    float v[8];
    _mm256_storeu_ps(v, load8(r, k / 8 * 8));
    return v[k % 8];
  }
};

template <int HT, class Dec>
void weighted_sum(const float* p, int64_t n_keys, const Dec& keys, int dim, int h0, int c, float* out) {
  __m256 acc[HT][2];
  for (int h = 0; h < HT; ++h) acc[h][0] = acc[h][1] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n_keys; ++j) {
    const __m256 k0 = keys.load8(j, c), k1 = keys.load8(j, c + 8);
    for (int h = 0; h < HT; ++h) {
      const __m256 w = _mm256_broadcast_ss(p + (h0 + h) * n_keys + j);
      acc[h][0] = _mm256_fmadd_ps(w, k0, acc[h][0]);
      acc[h][1] = _mm256_fmadd_ps(w, k1, acc[h][1]);
    }
  }
  for (int h = 0; h < HT; ++h) {
    _mm256_storeu_ps(out + (h0 + h) * dim + c, acc[h][0]);
    _mm256_storeu_ps(out + (h0 + h) * dim + c + 8, acc[h][1]);
  }
}

template <class Dec>
void attend(const float* q, int n_heads, int dim, const Dec& dec, int64_t n_keys, const float* sink, float scale,
            float* out) {
  thread_local std::vector<float> p;
  p.resize(static_cast<size_t>(n_heads) * n_keys);
  // scores[h, j]: heads are the "tokens", keys the "rows".
  int h = 0;
  for (; h + 4 <= n_heads; h += 4) {
    int64_t j = 0;
    for (; j + 3 <= n_keys; j += 3) panel_tile<3, 4>(dec, q, dim, j, h, j, n_keys, p.data());
    for (; j < n_keys; ++j) panel_tile<1, 4>(dec, q, dim, j, h, j, n_keys, p.data());
  }
  for (; h < n_heads; ++h) {
    int64_t j = 0;
    for (; j + 3 <= n_keys; j += 3) panel_tile<3, 1>(dec, q, dim, j, h, j, n_keys, p.data());
    for (; j < n_keys; ++j) panel_tile<1, 1>(dec, q, dim, j, h, j, n_keys, p.data());
  }
  for (int hh = 0; hh < n_heads; ++hh) {
    float* ph = p.data() + static_cast<int64_t>(hh) * n_keys;
    for (int64_t j = 0; j < n_keys; ++j) ph[j] *= scale;
    softmax_with_sink(ph, n_keys, sink[hh]);
  }
  for (int c = 0; c < dim; c += 16) {
    int hh = 0;
    for (; hh + 4 <= n_heads; hh += 4) weighted_sum<4>(p.data(), n_keys, dec, dim, hh, c, out);
    for (; hh < n_heads; ++hh) weighted_sum<1>(p.data(), n_keys, dec, dim, hh, c, out);
  }
}

}  // namespace

void attend_mqa_avx2(const float* q, int n_heads, int dim, const float* const* keys, int64_t n_keys,
                     const float* sink, float scale, float* out) {
  if (dim % 16 != 0) return attend_mqa_scalar(q, n_heads, dim, keys, n_keys, sink, scale, out);
  attend(q, n_heads, dim, KeyRows{keys}, n_keys, sink, scale, out);
}

void attend_mqa_fp8_avx2(const float* q, int n_heads, const Fp8KvRow& row, const uint8_t* const* keys,
                         int64_t n_keys, const float* sink, float scale, float* out) {
  attend(q, n_heads, row.dim, Fp8KeyRows{keys, row.nope(), row.scales_offset(), row.rope_bf16}, n_keys, sink, scale, out);
}

}  // namespace mnemo::kernels::cpu
