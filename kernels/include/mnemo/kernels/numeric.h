#pragma once
// Scalar number formats shared by the kernels and the model loader.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace mnemo::kernels {

inline float bf16_to_f32(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round to nearest, ties to even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// E4M3 "fn": bias 7, no infinities, 0x7F/0xFF are NaN, largest finite 448, subnormals 2^-9 apart.
float e4m3_to_f32(uint8_t v);
// E2M1 nibble (sign in bit 3): 0, 0.5, 1, 1.5, 2, 3, 4, 6.
float e2m1_to_f32(uint8_t nibble);
// UE8M0: 2^(e - 127); 0xFF is NaN.
float ue8m0_to_f32(uint8_t e);

// The fixed-order dot product every kernel (scalar, AVX2 GEMV and GEMM tiles) computes bit for bit:
// 8 lanes, lane j accumulating fma(x[k], w[k], acc) over k = j mod 8 in increasing k from +0, the inputs
// padded with zeros to a multiple of 8; then ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
// w(k) is the weight as a float (for FP8/FP4: the code's value times its scale, one fp32 multiply).
template <typename LoadW>
inline float dot_fixed_order(const float* x, int64_t n, LoadW&& w) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    for (int j = 0; j < 8; ++j) acc[j] = std::fma(x[k + j], w(k + j), acc[j]);
  }
  if (k < n) {
    for (int j = 0; j < 8; ++j, ++k) acc[j] = k < n ? std::fma(x[k], w(k), acc[j]) : std::fma(0.0f, 0.0f, acc[j]);
  }
  float s0 = (acc[0] + acc[4]) + (acc[2] + acc[6]);
  float s1 = (acc[1] + acc[5]) + (acc[3] + acc[7]);
  return s0 + s1;
}

}  // namespace mnemo::kernels
