#include <mnemo/kernels/kv_quant.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <mnemo/kernels/numeric.h>

namespace mnemo::kernels {

int ceil_log2(float t) {
  uint32_t bits;
  std::memcpy(&bits, &t, 4);
  int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127;
  return exponent + ((bits & 0x7FFFFF) != 0 ? 1 : 0);
}

namespace {

// The largest finite value of each format, and the floor of a block's amax (golden-tiny README).
constexpr float kE4m3Max = 448.0f, kE4m3MinAmax = 1e-4f;
constexpr float kE2m1Max = 6.0f;
const float kE2m1MinAmax = 6.0f * std::ldexp(1.0f, -126);

// 2^(E - mantissa_bits) * roundHalfEven(v / 2^(E - mantissa_bits)), E = max(floor(log2 |v|), min_exp).
float round_mantissa(float v, int mantissa_bits, int min_exp) {
  if (v == 0.0f) return v;
  int e = std::max(std::ilogb(v), min_exp);
  float step = std::ldexp(1.0f, e - mantissa_bits);
  return std::nearbyint(v / step) * step;
}

// Rounds v[b, b + block) in place and returns the block's scale exponent; code(i, q) receives each
// element's rounded value before scaling (q = v[i] / scale, a value of the format).
template <class Code>
int round_block(float* v, int b, int end, float max_finite, float min_amax, float (*round)(float), Code&& code) {
  const float inv_max = 1.0f / max_finite;
  float amax = min_amax;
  for (int i = b; i < end; ++i) amax = std::max(amax, std::fabs(v[i]));
  const int e = ceil_log2(amax * inv_max);
  const float scale = std::ldexp(1.0f, e);
  for (int i = b; i < end; ++i) {
    const float q = round(std::clamp(v[i] / scale, -max_finite, max_finite));
    code(i, q);
    v[i] = scale * q;
  }
  return e;
}

void round_trip(float* v, int n, int block, float max_finite, float min_amax, float (*round)(float)) {
  for (int b = 0; b < n; b += block) {
    round_block(v, b, std::min(n, b + block), max_finite, min_amax, round, [](int, float) {});
  }
}

uint8_t sign_bit(float q) { return std::signbit(q) ? 1 : 0; }

// The E4M3 code of a value of the format (|q| <= 448, on its grid; -0 keeps its sign).
uint8_t e4m3_code(float q) {
  const float a = std::fabs(q);
  uint8_t mag = 0;
  if (a != 0.0f) {
    const int e = std::ilogb(a);
    if (e < -6) {
      mag = static_cast<uint8_t>(std::ldexp(a, 9));  // subnormal: a multiple of 2^-9
    } else {
      mag = static_cast<uint8_t>(((e + 7) << 3) | static_cast<int>(std::ldexp(a, 3 - e) - 8.0f));
    }
  }
  return static_cast<uint8_t>(sign_bit(q) << 7 | mag);
}

// The E2M1 nibble of a value of the format (|q| in {0, 0.5, 1, 1.5, 2, 3, 4, 6}).
uint8_t e2m1_code(float q) {
  const float a = std::fabs(q);
  uint8_t mag = 0;
  if (a == 0.5f) {
    mag = 1;
  } else if (a >= 1.0f) {
    const int e = std::ilogb(a);  // 0, 1 or 2
    mag = static_cast<uint8_t>(((e + 1) << 1) | static_cast<int>(std::ldexp(a, 1 - e) - 2.0f));
  }
  return static_cast<uint8_t>(sign_bit(q) << 3 | mag);
}

uint8_t ue8m0_code(int e) { return static_cast<uint8_t>(std::clamp(e + 127, 0, 254)); }

}  // namespace

float round_e4m3(float v) { return round_mantissa(v, 3, -6); }
float round_e2m1(float v) { return round_mantissa(v, 1, 0); }

void fp8_round_trip(float* v, int n, int block) { round_trip(v, n, block, kE4m3Max, kE4m3MinAmax, round_e4m3); }
void fp4_round_trip(float* v, int n, int block) {
  round_trip(v, n, block, kE2m1Max, kE2m1MinAmax, round_e2m1);
}

void fp8_kv_encode(const Fp8KvRow& row, float* v, uint8_t* record) {
  const int nope = row.nope();
  uint8_t* scales = record + row.scales_offset();
  for (int b = 0, k = 0; b < nope; b += 64, ++k) {
    const int e = round_block(v, b, std::min(nope, b + 64), kE4m3Max, kE4m3MinAmax, round_e4m3,
                              [&](int i, float q) { record[i] = e4m3_code(q); });
    scales[k] = ue8m0_code(e);
  }
  if (row.rope_bf16) {
    for (int i = nope; i < row.dim; ++i) {
      const uint16_t h = f32_to_bf16(v[i]);
      std::memcpy(record + nope + 2 * (i - nope), &h, 2);
      v[i] = bf16_to_f32(h);
    }
  } else {
    std::memcpy(record + nope, v + nope, static_cast<size_t>(row.rope_dim) * 4);
  }
  std::memset(record + row.scales_offset() + (nope + 63) / 64, 0,
              static_cast<size_t>(row.bytes() - row.scales_offset() - (nope + 63) / 64));
}

void fp8_kv_decode(const Fp8KvRow& row, const uint8_t* record, float* v) {
  const int nope = row.nope();
  const uint8_t* scales = record + row.scales_offset();
  for (int i = 0; i < nope; ++i) v[i] = ue8m0_to_f32(scales[i / 64]) * e4m3_to_f32(record[i]);
  if (!row.rope_bf16) {
    std::memcpy(v + nope, record + nope, static_cast<size_t>(row.rope_dim) * 4);
    return;
  }
  for (int i = nope; i < row.dim; ++i) {
    uint16_t h;
    std::memcpy(&h, record + nope + 2 * (i - nope), 2);
    v[i] = bf16_to_f32(h);
  }
}

void fp4_encode(float* v, int n, uint8_t* codes, uint8_t* scales) {
  std::memset(codes, 0, static_cast<size_t>(n / 2));
  for (int b = 0; b < n; b += 32) {
    const int e = round_block(v, b, b + 32, kE2m1Max, kE2m1MinAmax, round_e2m1, [&](int i, float q) {
      codes[i / 2] |= static_cast<uint8_t>(e2m1_code(q) << ((i & 1) ? 4 : 0));
    });
    scales[b / 32] = ue8m0_code(e);
  }
}

void fp4_decode(const uint8_t* codes, const uint8_t* scales, int n, float* v) {
  for (int i = 0; i < n; ++i) {
    const uint8_t nibble = (i & 1) ? codes[i / 2] >> 4 : codes[i / 2] & 0xF;
    v[i] = e2m1_to_f32(nibble) * ue8m0_to_f32(scales[i / 32]);
  }
}

}  // namespace mnemo::kernels
