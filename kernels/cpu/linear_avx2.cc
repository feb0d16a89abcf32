// The linear op with AVX2+FMA+F16C (this file alone is compiled with -mavx2 -mfma -mf16c). Each output
// element is one 8-lane accumulator (lane j = k mod 8), reduced in numeric.h's fixed tree, so the bits equal
// the scalar fallback's whatever the tiling: a tile only decides which accumulators live together.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/linear_cpu.h"
#include "cpu/gemm_tiles_avx2.h"
#include "cpu/weight_decode_avx2.h"

namespace mnemo::kernels::cpu {
namespace {

// Tokens of one row tile in tiles of 4 (then the remainder).
template <int RT, class Dec>
void direct_rows(const Dec& dec, const float* x, int64_t n_tokens, int64_t cols, int64_t r0, int64_t ldy, float* y) {
  int64_t t = 0;
  for (; t + 4 <= n_tokens; t += 4) direct_tile<RT, 4>(dec, x, cols, r0, t, ldy, y);
  switch (n_tokens - t) {
    case 3: direct_tile<RT, 3>(dec, x, cols, r0, t, ldy, y); break;
    case 2: direct_tile<RT, 2>(dec, x, cols, r0, t, ldy, y); break;
    case 1: direct_tile<RT, 1>(dec, x, cols, r0, t, ldy, y); break;
  }
}

template <class Dec>
void direct(const Dec& dec, const float* x, int64_t n_tokens, int64_t cols, int64_t row_begin, int64_t row_end,
            int64_t ldy, float* y) {
  int64_t r = row_begin;
  if (n_tokens <= 2) {
    for (; r + 4 <= row_end; r += 4) direct_rows<4>(dec, x, n_tokens, cols, r, ldy, y);
  } else {
    for (; r + 2 <= row_end; r += 2) direct_rows<2>(dec, x, n_tokens, cols, r, ldy, y);
  }
  for (; r < row_end; ++r) direct_rows<1>(dec, x, n_tokens, cols, r, ldy, y);
}

// All tokens against panel rows [0, n_rows) of dec, results in y columns y_r0 + r.
template <class Dec>
void panel_gemm(const Dec& dec, const float* x, int64_t n_tokens, int64_t cols, int64_t n_rows, int64_t y_r0,
                int64_t ldy, float* y) {
  int64_t t = 0;
  for (; t + 4 <= n_tokens; t += 4) {
    int64_t r = 0;
    for (; r + 3 <= n_rows; r += 3) panel_tile<3, 4>(dec, x, cols, r, t, y_r0 + r, ldy, y, t == 0);
    for (; r < n_rows; ++r) panel_tile<1, 4>(dec, x, cols, r, t, y_r0 + r, ldy, y);
  }
  for (; t < n_tokens; ++t) {
    int64_t r = 0;
    for (; r + 3 <= n_rows; r += 3) panel_tile<3, 1>(dec, x, cols, r, t, y_r0 + r, ldy, y);
    for (; r < n_rows; ++r) panel_tile<1, 1>(dec, x, cols, r, t, y_r0 + r, ldy, y);
  }
}

// Many tokens: rows dequantised panel by panel into a transient f32 buffer that stays in L2, then a
// register-tiled GEMM of every token against it; the panel is reused by all the tokens.
template <class Dec>
void packed(const Dec& dec, const float* x, int64_t n_tokens, int64_t cols, int64_t row_begin, int64_t row_end,
            int64_t ldy, float* y) {
  constexpr int64_t kPanelBytes = 384 << 10;
  const int64_t ld = (cols + 7) / 8 * 8;
  const int64_t panel_rows = std::max<int64_t>(3, kPanelBytes / (ld * 4) / 3 * 3);
  thread_local std::vector<float, AlignedAllocator<float>> panel;
  panel.resize(static_cast<size_t>(panel_rows * ld));
  for (int64_t p0 = row_begin; p0 < row_end; p0 += panel_rows) {
    const int64_t n_rows = std::min(panel_rows, row_end - p0);
    for (int64_t r = 0; r < n_rows; ++r) dec.dequantise_row(p0 + r, panel.data() + r * ld);
    PanelDec pd{panel.data(), ld};
    panel_gemm(pd, x, n_tokens, cols, n_rows, p0, ldy, y);
  }
}

// Several tokens, weights cheap to widen (f32, bf16): 3x4 tiles straight from the stored rows, blocked so a
// block of rows stays in L2 while every token tile passes over it (the weights leave memory once).
template <class Dec>
void blocked(const Dec& dec, const float* x, int64_t n_tokens, int64_t cols, int64_t row_begin, int64_t row_end,
             int64_t ldy, float* y, int64_t bytes_per_weight) {
  constexpr int64_t kBlockBytes = 256 << 10;
  const int64_t block_rows = std::max<int64_t>(3, kBlockBytes / (cols * bytes_per_weight) / 3 * 3);
  for (int64_t p0 = row_begin; p0 < row_end; p0 += block_rows) {
    panel_gemm(OffsetDec<Dec>{dec, p0}, x, n_tokens, cols, std::min(block_rows, row_end - p0), p0, ldy, y);
  }
}

// From this many tokens on, dequantising FP8/FP4 rows once into a panel beats dequantising them in
// registers per token tile (measured: 8192x1024, one thread).
constexpr int64_t kPackTokens = 4;

template <class Dec>
void run(const Dec& dec, const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin, int64_t row_end,
         float* y) {
  if (n_tokens >= kPackTokens) {
    packed(dec, x, n_tokens, w.cols, row_begin, row_end, w.rows, y);
  } else {
    direct(dec, x, n_tokens, w.cols, row_begin, row_end, w.rows, y);
  }
}

}  // namespace

void linear_rows_avx2(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin, int64_t row_end,
                      float* y) {
  switch (w.type) {
    case WeightType::kF32: {
      // F32 rows are already what a panel holds.
      F32Dec dec{static_cast<const float*>(w.data), w.cols};
      if (n_tokens >= 3) return blocked(dec, x, n_tokens, w.cols, row_begin, row_end, w.rows, y, 4);
      return direct(dec, x, n_tokens, w.cols, row_begin, row_end, w.rows, y);
    }
    case WeightType::kBF16: {
      Bf16Dec dec{static_cast<const uint16_t*>(w.data), w.cols};
      // Widening bf16 in registers costs little; packing pays only once a panel serves many token tiles.
      if (n_tokens >= 32) return packed(dec, x, n_tokens, w.cols, row_begin, row_end, w.rows, y);
      if (n_tokens >= 3) return blocked(dec, x, n_tokens, w.cols, row_begin, row_end, w.rows, y, 2);
      return direct(dec, x, n_tokens, w.cols, row_begin, row_end, w.rows, y);
    }
    case WeightType::kF8E4M3Block128: run(Fp8Dec(w), x, n_tokens, w, row_begin, row_end, y); break;
    case WeightType::kFP4E2M1Group32: run(Fp4Dec(w), x, n_tokens, w, row_begin, row_end, y); break;
  }
}

}  // namespace mnemo::kernels::cpu
