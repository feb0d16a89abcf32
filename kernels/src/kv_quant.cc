#include <mnemo/kernels/kv_quant.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mnemo::kernels {

int ceil_log2(float t) {
  uint32_t bits;
  std::memcpy(&bits, &t, 4);
  int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127;
  return exponent + ((bits & 0x7FFFFF) != 0 ? 1 : 0);
}

namespace {

// 2^(E - mantissa_bits) * roundHalfEven(v / 2^(E - mantissa_bits)), E = max(floor(log2 |v|), min_exp).
float round_mantissa(float v, int mantissa_bits, int min_exp) {
  if (v == 0.0f) return v;
  int e = std::max(std::ilogb(v), min_exp);
  float step = std::ldexp(1.0f, e - mantissa_bits);
  return std::nearbyint(v / step) * step;
}

void round_trip(float* v, int n, int block, float max_finite, float min_amax, float (*round)(float)) {
  const float inv_max = 1.0f / max_finite;
  for (int b = 0; b < n; b += block) {
    int end = std::min(n, b + block);
    float amax = min_amax;
    for (int i = b; i < end; ++i) amax = std::max(amax, std::fabs(v[i]));
    float scale = std::ldexp(1.0f, ceil_log2(amax * inv_max));
    for (int i = b; i < end; ++i) v[i] = scale * round(std::clamp(v[i] / scale, -max_finite, max_finite));
  }
}

}  // namespace

float round_e4m3(float v) { return round_mantissa(v, 3, -6); }
float round_e2m1(float v) { return round_mantissa(v, 1, 0); }

void fp8_round_trip(float* v, int n, int block) { round_trip(v, n, block, 448.0f, 1e-4f, round_e4m3); }
void fp4_round_trip(float* v, int n, int block) {
  round_trip(v, n, block, 6.0f, 6.0f * std::ldexp(1.0f, -126), round_e2m1);
}

}  // namespace mnemo::kernels
