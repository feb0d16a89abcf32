#include <mnemo/kernels/numeric.h>

#include <vector>

#include "cpu/attention_cpu.h"

namespace mnemo::kernels::cpu {

void attend_mqa_scalar(const float* q, int n_heads, int dim, const float* const* keys, int64_t n_keys,
                       const float* sink, float scale, float* out) {
  thread_local std::vector<float> p;
  p.resize(static_cast<size_t>(n_keys));
  for (int h = 0; h < n_heads; ++h) {
    const float* qh = q + static_cast<int64_t>(h) * dim;
    for (int64_t j = 0; j < n_keys; ++j) {
      p[j] = dot_fixed_order(qh, dim, [&](int64_t k) { return keys[j][k]; }) * scale;
    }
    softmax_with_sink(p.data(), n_keys, sink[h]);
    float* oh = out + static_cast<int64_t>(h) * dim;
    for (int c = 0; c < dim; ++c) {
      float o = 0;
      for (int64_t j = 0; j < n_keys; ++j) o = std::fma(p[j], keys[j][c], o);
      oh[c] = o;
    }
  }
}

// The definition: the keys decoded, then attend_mqa_scalar.
void attend_mqa_fp8_scalar(const float* q, int n_heads, const Fp8KvRow& row, const uint8_t* const* keys,
                           int64_t n_keys, const float* sink, float scale, float* out) {
  thread_local std::vector<float> decoded;
  thread_local std::vector<const float*> rows;
  decoded.resize(static_cast<size_t>(n_keys) * row.dim);
  rows.resize(static_cast<size_t>(n_keys));
  for (int64_t j = 0; j < n_keys; ++j) {
    fp8_kv_decode(row, keys[j], decoded.data() + j * row.dim);
    rows[j] = decoded.data() + j * row.dim;
  }
  attend_mqa_scalar(q, n_heads, row.dim, rows.data(), n_keys, sink, scale, out);
}

}  // namespace mnemo::kernels::cpu
