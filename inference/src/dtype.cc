#include <mnemo/inference/dtype.h>

#include <cmath>
#include <limits>

namespace mnemo::inference {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};

constexpr DTypeInfo kDTypes[kDTypeCount] = {
    {DType::kBool, "BOOL", 1},      {DType::kU8, "U8", 1},          {DType::kI8, "I8", 1},
    {DType::kU16, "U16", 2},        {DType::kI16, "I16", 2},        {DType::kU32, "U32", 4},
    {DType::kI32, "I32", 4},        {DType::kU64, "U64", 8},        {DType::kI64, "I64", 8},
    {DType::kF16, "F16", 2},        {DType::kBF16, "BF16", 2},      {DType::kF32, "F32", 4},
    {DType::kF64, "F64", 8},        {DType::kF8E4M3, "F8_E4M3", 1}, {DType::kF8E5M2, "F8_E5M2", 1},
    {DType::kF8E8M0, "F8_E8M0", 1},
};


}  // namespace

std::string_view dtype_name(DType dtype) { return kDTypes[static_cast<int>(dtype)].name; }

size_t dtype_size(DType dtype) { return kDTypes[static_cast<int>(dtype)].size; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

std::string DTypeSet::to_string() const {
  std::string out;
  for (const DTypeInfo& info : kDTypes) {
    if (!contains(info.dtype)) continue;
    if (!out.empty()) out += '|';
    out += info.name;
  }
  return out.empty() ? "(none)" : out;
}

float f16_to_f32(uint16_t v) {
  uint32_t sign = static_cast<uint32_t>(v & 0x8000u) << 16;
  uint32_t exp = (v >> 10) & 0x1Fu;
  uint32_t man = v & 0x3FFu;
  if (exp == 0x1F) return bits_to_f32(sign | 0x7F800000u | (man << 13));
  if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
  float mag = std::ldexp(static_cast<float>(man), -24);
  return sign ? -mag : mag;
}


uint8_t f32_to_e4m3(float f) {
  if (std::isnan(f)) return 0x7F;
  uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  float a = std::fabs(f);
  if (a >= 448.0f) return sign | 0x7E;
  int code;
  if (a < 0x1p-6f) {
    // Subnormal range: multiples of 2^-9; rounding up to 8 lands exactly on the smallest normal.
    code = static_cast<int>(std::nearbyint(a * 512.0f));
  } else {
    int e2;
    std::frexp(a, &e2);  // a = m * 2^e2, m in [0.5, 1): floor(log2 a) = e2 - 1
    int e = e2 - 1;
    int q = static_cast<int>(std::nearbyint(std::ldexp(a, 3 - e)));  // in [8, 16]
    code = ((e + 7) << 3) + (q - 8);
  }
  if (code > 0x7E) code = 0x7E;
  return static_cast<uint8_t>(sign | code);
}


uint8_t f32_to_e2m1(float f) {
  if (std::isnan(f)) return 0x7;
  uint8_t sign = std::signbit(f) ? 0x8 : 0x0;
  float a = std::fabs(f);
  if (a >= 6.0f) return sign | 0x7;
  int code;
  if (a < 1.0f) {
    code = static_cast<int>(std::nearbyint(a * 2.0f));  // 0, 0.5 or 1 (= code 2)
  } else {
    int e2;
    std::frexp(a, &e2);
    int e = e2 - 1;                                                  // 0..2
    int q = static_cast<int>(std::nearbyint(std::ldexp(a, 1 - e)));  // in [2, 4]
    code = ((e + 1) << 1) + (q - 2);
  }
  if (code > 0x7) code = 0x7;
  return static_cast<uint8_t>(sign | code);
}


}  // namespace mnemo::inference
