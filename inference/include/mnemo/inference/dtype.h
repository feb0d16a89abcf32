#pragma once
// Element types of safetensors checkpoints and the scalar conversions between them and f32.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <mnemo/kernels/numeric.h>

namespace mnemo::inference {

// FP4 E2M1 has no safetensors dtype of its own: checkpoints pack it two per byte as I8/U8.
enum class DType : uint8_t {
  kBool,
  kU8,
  kI8,
  kU16,
  kI16,
  kU32,
  kI32,
  kU64,
  kI64,
  kF16,
  kBF16,
  kF32,
  kF64,
  kF8E4M3,
  kF8E5M2,
  kF8E8M0,
};
inline constexpr int kDTypeCount = static_cast<int>(DType::kF8E8M0) + 1;

// The safetensors spelling: "BF16", "F8_E4M3", "I64", ...
std::string_view dtype_name(DType dtype);
std::optional<DType> dtype_from_name(std::string_view name);
size_t dtype_size(DType dtype);

// A set of dtypes a tensor may have, e.g. {DType::kF8E8M0, DType::kF32} for a block scale.
class DTypeSet {
 public:
  constexpr DTypeSet(DType d)
      : bits_(1u << static_cast<int>(d)) {}  // NOLINT(google-explicit-constructor)
  constexpr DTypeSet(std::initializer_list<DType> ds) {
    for (DType d : ds) bits_ |= 1u << static_cast<int>(d);
  }
  constexpr bool contains(DType d) const { return (bits_ >> static_cast<int>(d)) & 1u; }
  // "BF16" or "F8_E8M0|F32".
  std::string to_string() const;

 private:
  uint32_t bits_ = 0;
};

inline float bits_to_f32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

// The kernels own the bf16 conversions (round to nearest even; NaN stays NaN).
using kernels::bf16_to_f32;
using kernels::f32_to_bf16;

float f16_to_f32(uint16_t v);

// E4M3 "fn": bias 7, no infinities, 0x7F/0xFF are NaN, largest finite 448, subnormals 2^-9 apart.
using kernels::e4m3_to_f32;
// Round to nearest even, saturating to +-448; NaN becomes 0x7F.
uint8_t f32_to_e4m3(float f);

// E5M2 (IEEE-like, bias 15): the high byte of an f16.
inline float e5m2_to_f32(uint8_t v) { return f16_to_f32(static_cast<uint16_t>(v << 8)); }

// FP4 E2M1, the low 4 bits of `nibble`: {0, 0.5, 1, 1.5, 2, 3, 4, 6} with a sign bit (bit 3).
using kernels::e2m1_to_f32;
// Round to nearest even, saturating to +-6; NaN becomes +6 (E2M1 has no NaN).
uint8_t f32_to_e2m1(float f);

// UE8M0 block scale: 2^(e-127); 0xFF is NaN.
using kernels::ue8m0_to_f32;
// The UE8M0 code of a power of two 2^k, k in [-127, 127].
inline uint8_t ue8m0_from_exponent(int k) { return static_cast<uint8_t>(k + 127); }

}  // namespace mnemo::inference
