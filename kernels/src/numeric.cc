#include <mnemo/kernels/numeric.h>

#include <cmath>
#include <limits>

namespace mnemo::kernels {

float e4m3_to_f32(uint8_t v) {
  int exp = (v >> 3) & 0xF;
  int man = v & 0x7;
  if (exp == 0xF && man == 0x7) return std::numeric_limits<float>::quiet_NaN();
  float mag = exp == 0 ? std::ldexp(static_cast<float>(man), -9) : std::ldexp(static_cast<float>(8 + man), exp - 10);
  return (v & 0x80) ? -mag : mag;
}

float e2m1_to_f32(uint8_t nibble) {
  int exp = (nibble >> 1) & 0x3;
  int man = nibble & 0x1;
  float mag = exp == 0 ? 0.5f * static_cast<float>(man) : std::ldexp(static_cast<float>(2 + man), exp - 2);
  return (nibble & 0x8) ? -mag : mag;
}

float ue8m0_to_f32(uint8_t e) {
  if (e == 0xFF) return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f, static_cast<int>(e) - 127);
}

}  // namespace mnemo::kernels
