#pragma once
// Weight rows dequantised in AVX2 registers, 8 or 32 columns at a time, each value exactly
// cpu::dequantised(w, r, k): bf16 widened; FP8 E4M3 re-biased into an f16 and widened by F16C; FP4 E2M1
// looked up as twice its value in int8; then times the scale (pre-multiplied by the inverse of that
// factor, a power of two, so the product is the same correctly rounded one). Only for -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cpu/linear_cpu.h"
#include <mnemo/kernels/numeric.h>

namespace mnemo::kernels::cpu {

// 64-byte aligned storage for transient panels.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) {
    void* p = std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
};

// Scale `index` of w times 2^shift (a power of two, so exact): UE8M0 built from its exponent bits inline
// (the hot loops call this once per 32 or 128 columns), F32 read as stored.
inline float scale_times_pow2(const WeightView& w, int64_t index, int shift) {
  if (w.scale_type == ScaleType::kUe8m0) {
    const int e = static_cast<const uint8_t*>(w.scale)[index] + shift;
    if (e >= 1 && e <= 254) {
      float f;
      const uint32_t bits = static_cast<uint32_t>(e) << 23;
      std::memcpy(&f, &bits, 4);
      return f;
    }
  }
  return weight_scale(w, index) * (shift >= 0 ? static_cast<float>(1 << shift) : 1.0f / static_cast<float>(1 << -shift));
}

// Shared by the decoders: a row as floats, padded with zeros to a multiple of 8.
template <class Dec>
inline void dequantise_row_generic(const Dec& d, int64_t cols, int64_t r, float* out) {
  int64_t k = 0;
  for (; k + 32 <= cols; k += 32) {
    // The next row's line: packing streams weights from memory, faster with lines requested ahead.
    if constexpr (requires { d.prefetch(r, k); }) d.prefetch(r + 1, k);
    __m256 w[4];
    d.load32(r, k, w);
    for (int j = 0; j < 4; ++j) _mm256_storeu_ps(out + k + 8 * j, w[j]);
  }
  for (; k + 8 <= cols; k += 8) _mm256_storeu_ps(out + k, d.load8(r, k));
  for (; k < cols; ++k) out[k] = d.at(r, k);
  for (; k % 8 != 0; ++k) out[k] = 0.0f;
}

struct F32Dec {
  const float* p;
  int64_t cols;
  __m256 load8(int64_t r, int64_t k) const { return _mm256_loadu_ps(p + r * cols + k); }
  void load32(int64_t r, int64_t k, __m256 (&w)[4]) const {
    for (int j = 0; j < 4; ++j) w[j] = load8(r, k + 8 * j);
  }
  float at(int64_t r, int64_t k) const { return p[r * cols + k]; }
  void prefetch(int64_t r, int64_t k) const { _mm_prefetch(reinterpret_cast<const char*>(p + r * cols + k), _MM_HINT_T0); }
};

// Rows of a packed f32 panel with leading dimension ld (64-byte aligned, a multiple of 8).
struct PanelDec {
  const float* p;
  int64_t ld;
  __m256 load8(int64_t r, int64_t k) const { return _mm256_load_ps(p + r * ld + k); }
  float at(int64_t r, int64_t k) const { return p[r * ld + k]; }
};

// A decoder whose row 0 is row `r0` of another.
template <class Dec>
struct OffsetDec {
  Dec d;
  int64_t r0;
  __m256 load8(int64_t r, int64_t k) const { return d.load8(r0 + r, k); }
  float at(int64_t r, int64_t k) const { return d.at(r0 + r, k); }
  void prefetch(int64_t r, int64_t k) const { d.prefetch(r0 + r, k); }
};

struct Bf16Dec {
  const uint16_t* p;
  int64_t cols;
  static __m256 widen(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
  __m256 load8(int64_t r, int64_t k) const {
    return widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + r * cols + k)));
  }
  void load32(int64_t r, int64_t k, __m256 (&w)[4]) const {
    for (int j = 0; j < 4; ++j) w[j] = load8(r, k + 8 * j);
  }
  float at(int64_t r, int64_t k) const { return bf16_to_f32(p[r * cols + k]); }
  void prefetch(int64_t r, int64_t k) const { _mm_prefetch(reinterpret_cast<const char*>(p + r * cols + k), _MM_HINT_T0); }
  void dequantise_row(int64_t r, float* out) const { dequantise_row_generic(*this, cols, r, out); }
};

// E4M3 s.eeee.mmm -> f16 s.0eeee.mmm0000000 = value / 256 (subnormals included), so the scale is taken x256.
// The NaN code 0x7F is not supported in weights (it reads as 480).
struct Fp8Dec {
  const uint8_t* p;
  int64_t cols, scale_cols, scale_row0;
  const WeightView* w;
  explicit Fp8Dec(const WeightView& view)
      : p(static_cast<const uint8_t*>(view.data)),
        cols(view.cols),
        scale_cols((view.cols + 127) / 128),
        scale_row0(view.scale_row0),
        w(&view) {}
  float scale256(int64_t r, int64_t k) const {
    return scale_times_pow2(*w, ((scale_row0 + r) / 128) * scale_cols + k / 128, 8);
  }
  static __m128i to_f16(__m128i bytes_as_i16) {
    return _mm_and_si128(_mm_slli_epi16(bytes_as_i16, 7), _mm_set1_epi16(static_cast<short>(0xBFFF)));
  }
  __m256 load8(int64_t r, int64_t k) const {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + r * cols + k));
    return _mm256_mul_ps(_mm256_cvtph_ps(to_f16(_mm_cvtepi8_epi16(b))), _mm256_set1_ps(scale256(r, k)));
  }
  // A 32-column chunk never crosses a 128-column scale block.
  void load32(int64_t r, int64_t k, __m256 (&w)[4]) const {
    const __m256 s = _mm256_set1_ps(scale256(r, k));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + r * cols + k));
    const __m256i mask = _mm256_set1_epi16(static_cast<short>(0xBFFF));
    const __m256i lo = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)), 7), mask);
    const __m256i hi = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1)), 7), mask);
    w[0] = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(lo)), s);
    w[1] = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(lo, 1)), s);
    w[2] = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(hi)), s);
    w[3] = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(hi, 1)), s);
  }
  float at(int64_t r, int64_t k) const { return dequantised(*w, r, k); }
  void dequantise_row(int64_t r, float* out) const { dequantise_row_generic(*this, cols, r, out); }
  void prefetch(int64_t r, int64_t k) const { _mm_prefetch(reinterpret_cast<const char*>(p + r * cols + k), _MM_HINT_T0); }
};

// E2M1 nibbles (low nibble = even element) -> int8 twice their value by a byte shuffle, so the scale is
// taken x0.5. Columns are a multiple of 32 (checked by the front end).
struct Fp4Dec {
  const uint8_t* p;
  int64_t cols, groups;
  const WeightView* w;
  explicit Fp4Dec(const WeightView& view)
      : p(static_cast<const uint8_t*>(view.data)), cols(view.cols), groups(view.cols / 32), w(&view) {}
  void load32(int64_t r, int64_t k, __m256 (&out)[4]) const {
    const __m128i lut = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i nib = _mm_set1_epi8(0x0F);
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + r * (cols / 2) + k / 2));
    const __m128i lo = _mm_and_si128(b, nib), hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib);
    const __m128i v0 = _mm_shuffle_epi8(lut, _mm_unpacklo_epi8(lo, hi));  // elements 0..15
    const __m128i v1 = _mm_shuffle_epi8(lut, _mm_unpackhi_epi8(lo, hi));  // elements 16..31
    const __m256 s = _mm256_set1_ps(scale_times_pow2(*w, r * groups + k / 32, -1));
    out[0] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v0)), s);
    out[1] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v0, 8))), s);
    out[2] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v1)), s);
    out[3] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v1, 8))), s);
  }
  __m256 load8(int64_t r, int64_t k) const {
    __m256 w4[4];
    load32(r, k / 32 * 32, w4);
    return w4[(k % 32) / 8];
  }
  float at(int64_t r, int64_t k) const { return dequantised(*w, r, k); }
  void dequantise_row(int64_t r, float* out) const { dequantise_row_generic(*this, cols, r, out); }
  void prefetch(int64_t r, int64_t k) const {
    _mm_prefetch(reinterpret_cast<const char*>(p + r * (cols / 2) + k / 2), _MM_HINT_T0);
  }
};

}  // namespace mnemo::kernels::cpu
