// attend_mqa with AVX2+FMA: scores as a register-tiled GEMM of heads x keys (the keys are shared by all
// heads, so each is read once per 4 heads), the weighted sum 16 dims x 4 heads at a time.
#include <immintrin.h>

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

template <int HT>
void weighted_sum(const float* p, int64_t n_keys, const float* const* keys, int dim, int h0, int c, float* out) {
  __m256 acc[HT][2];
  for (int h = 0; h < HT; ++h) acc[h][0] = acc[h][1] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n_keys; ++j) {
    const __m256 k0 = _mm256_loadu_ps(keys[j] + c), k1 = _mm256_loadu_ps(keys[j] + c + 8);
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

}  // namespace

void attend_mqa_avx2(const float* q, int n_heads, int dim, const float* const* keys, int64_t n_keys,
                     const float* sink, float scale, float* out) {
  if (dim % 16 != 0) return attend_mqa_scalar(q, n_heads, dim, keys, n_keys, sink, scale, out);
  thread_local std::vector<float> p;
  p.resize(static_cast<size_t>(n_heads) * n_keys);
  const KeyRows dec{keys};
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
    for (; hh + 4 <= n_heads; hh += 4) weighted_sum<4>(p.data(), n_keys, keys, dim, hh, c, out);
    for (; hh < n_heads; ++hh) weighted_sum<1>(p.data(), n_keys, keys, dim, hh, c, out);
  }
}

}  // namespace mnemo::kernels::cpu
