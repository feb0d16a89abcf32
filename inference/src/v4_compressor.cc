#include "v4_compressor.h"

#include <mnemo/kernels/linear.h>

#include <cmath>
#include <limits>

#include "v4_kv_rows.h"

namespace mnemo::inference::v4 {
namespace {

// Emits the entry of a completed block from its rows (and the previous block's, when overlapping).
void emit_entry(const Dims& dims, const CompressorParams& p, const RopeTable& rope, int64_t block_index,
                const CompressorState& s, KvRows& entries) {
  const int w = p.width;
  const bool overlap = p.ratio == 4;
  const int row = overlap ? 2 * w : w;
  const int r = p.ratio;
  std::vector<float> entry(static_cast<size_t>(w));
  const bool has_prev = overlap && !s.prev_kv.empty();
  for (int c = 0; c < w; ++c) {
    // Candidates: the previous block's first halves (overlap only), then this block's (second halves).
    float m = -std::numeric_limits<float>::infinity();
    auto cur_col = overlap ? w + c : c;
    if (has_prev) {
      for (int t = 0; t < r; ++t) m = std::max(m, s.prev_score[t * row + c]);
    }
    for (int t = 0; t < r; ++t) m = std::max(m, s.score[t * row + cur_col]);
    float denom = 0, acc = 0;
    if (has_prev) {
      for (int t = 0; t < r; ++t) {
        float e = std::exp(s.prev_score[t * row + c] - m);
        denom += e;
        acc += e * s.prev_kv[t * row + c];
      }
    }
    for (int t = 0; t < r; ++t) {
      float e = std::exp(s.score[t * row + cur_col] - m);
      denom += e;
      acc += e * s.kv[t * row + cur_col];
    }
    entry[c] = acc / denom;
  }
  rms_norm(entry.data(), w, p.norm.data(), dims.norm_eps, entry.data());
  rope.rotate(entry.data(), w, block_index * r, 1);
  if (p.hadamard) hadamard(entry.data(), w);
  round_bf16(dims, entry);
  // Stored in the precision's layout (at serving: indexer keys as FP4, kv entries as FP8 nope dims + fp32 rope dims).
  if (p.hadamard) {
    append_index_key(dims, entry.data(), entries);
  } else {
    append_kv(dims, entry.data(), entries);
  }
}

}  // namespace

void compressor_project(const Dims& dims, const CompressorParams& p, const float* x, int n, std::vector<float>& kv,
                        std::vector<float>& score) {
  const int row = p.ratio == 4 ? 2 * p.width : p.width;
  kv.resize(static_cast<size_t>(n) * row);
  score.resize(static_cast<size_t>(n) * row);
  (void)kernels::linear(x, n, p.wkv, kv.data());
  (void)kernels::linear(x, n, p.wgate, score.data());
  round_bf16(dims, kv);
  round_bf16(dims, score);
}

void compress_tokens(const Dims& dims, const CompressorParams& p, const RopeTable& rope, const float* kv,
                     const float* score_in, int n, int64_t pos0, CompressorState& state, KvRows& entries) {
  const int row = p.ratio == 4 ? 2 * p.width : p.width;
  std::vector<float> score(score_in, score_in + static_cast<size_t>(n) * row);
  for (int i = 0; i < n; ++i) {
    int64_t pos = pos0 + i;
    const float* ape = p.ape.data() + (pos % p.ratio) * row;
    for (int c = 0; c < row; ++c) score[static_cast<size_t>(i) * row + c] += ape[c];
    state.kv.insert(state.kv.end(), kv + static_cast<ptrdiff_t>(i) * row, kv + static_cast<ptrdiff_t>(i + 1) * row);
    state.score.insert(state.score.end(), score.begin() + static_cast<ptrdiff_t>(i) * row,
                       score.begin() + static_cast<ptrdiff_t>(i + 1) * row);
    if ((pos + 1) % p.ratio != 0) continue;
    emit_entry(dims, p, rope, pos / p.ratio, state, entries);
    if (p.ratio == 4) {
      state.prev_kv.swap(state.kv);
      state.prev_score.swap(state.score);
    }
    state.kv.clear();
    state.score.clear();
  }
}

}  // namespace mnemo::inference::v4
