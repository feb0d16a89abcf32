#pragma once
// A read-only view of a weight matrix [rows (out), cols (in)] in the format it is stored in; kernels
// dequantise in registers, never into a persistent copy.
#include <cstdint>

namespace mnemo::kernels {

enum class WeightType : uint8_t {
  kF32,
  kBF16,
  kF8E4M3Block128,  // FP8 E4M3, one scale per 128x128 block: scale[ceil(rows/128)][ceil(cols/128)]
  kFP4E2M1Group32,  // FP4 E2M1 two per byte (low nibble first), one scale per 32 inputs: scale[rows][cols/32]
};

enum class ScaleType : uint8_t { kNone, kUe8m0, kF32 };

struct WeightView {
  WeightType type = WeightType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  ScaleType scale_type = ScaleType::kNone;
  const void* scale = nullptr;
  // FP8 only: the view's row r uses the scales of the full matrix's row scale_row0 + r (a row slice
  // may start inside a 128-row block).
  int64_t scale_row0 = 0;
};

}  // namespace mnemo::kernels

namespace mnemo::kernels {

// Rows [row0, row0 + n_rows) of w as a view of its own.
WeightView row_slice(const WeightView& w, int64_t row0, int64_t n_rows);

}  // namespace mnemo::kernels
