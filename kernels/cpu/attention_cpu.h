#pragma once
// CPU kernels of attend_mqa (attention.h): the scalar definition and the AVX2 path, bit for bit equal.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include <mnemo/kernels/kv_quant.h>

namespace mnemo::kernels::cpu {

void attend_mqa_scalar(const float* q, int n_heads, int dim, const float* const* keys, int64_t n_keys,
                       const float* sink, float scale, float* out);
void attend_mqa_avx2(const float* q, int n_heads, int dim, const float* const* keys, int64_t n_keys,
                     const float* sink, float scale, float* out);
void attend_mqa_fp8_scalar(const float* q, int n_heads, const Fp8KvRow& row, const uint8_t* const* keys,
                           int64_t n_keys, const float* sink, float scale, float* out);
void attend_mqa_fp8_avx2(const float* q, int n_heads, const Fp8KvRow& row, const uint8_t* const* keys,
                         int64_t n_keys, const float* sink, float scale, float* out);

// In place over one head's scores: exp(s - m) / (exp(sink - m) + sum_j exp(s_j - m)), j in order.
inline void softmax_with_sink(float* s, int64_t n, float sink) {
  float m = -INFINITY;
  for (int64_t j = 0; j < n; ++j) m = std::max(m, s[j]);
  float denom = std::exp(sink - m);
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    denom += s[j];
  }
  for (int64_t j = 0; j < n; ++j) s[j] = s[j] / denom;
}

}  // namespace mnemo::kernels::cpu
