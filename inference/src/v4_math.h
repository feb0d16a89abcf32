#pragma once
// Small fp32 building blocks of the V4 forward pass.
#include <cmath>
#include <cstdint>
#include <cstring>

#include <mnemo/kernels/numeric.h>
#include <vector>

#include "v4_dims.h"

namespace mnemo::inference::v4 {

// out = x * rsqrt(mean(x^2) + eps) * w (w may be null: no weight). In place when out == x.
inline void rms_norm(const float* x, int n, const float* w, float eps, float* out) {
  float ss = 0;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  float r = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int i = 0; i < n; ++i) out[i] = w ? x[i] * r * w[i] : x[i] * r;
}

// Rounds activations to bf16 in place when the model runs with bf16 activations.
inline void round_bf16(const Dims& dims, float* v, size_t n) {
  if (dims.numerics != Numerics::kBf16) return;
  for (size_t i = 0; i < n; ++i) v[i] = kernels::bf16_to_f32(kernels::f32_to_bf16(v[i]));
}
inline void round_bf16(const Dims& dims, std::vector<float>& v) { round_bf16(dims, v.data(), v.size()); }

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
// As torch.nn.functional.softplus (threshold 20).
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

// cos/sin of position * f_i for the rope_dim/2 frequencies of one layer kind.
class RopeTable {
 public:
  RopeTable() = default;
  RopeTable(const Dims& dims, bool compressed_layer);
  // Rotates the last rope_dim dims of v (pairs (2i, 2i+1)) by +pos (sign = 1) or -pos (sign = -1).
  void rotate(float* v, int dim, int64_t pos, int sign) const;

 private:
  std::vector<double> freqs_;
  int rope_dim_ = 0;
};

// The normalised Walsh-Hadamard transform (Sylvester order, scaled n^-1/2), in place; n a power of two.
void hadamard(float* v, int n);

}  // namespace mnemo::inference::v4
