#include "v4_attention.h"

#include <mnemo/kernels/attention.h>
#include <mnemo/kernels/linear.h>
#include <mnemo/kernels/thread_pool.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "v4_compressor.h"
#include <mnemo/kernels/kv_quant.h>
#include <mnemo/kernels/traffic.h>

#include "v4_kv_rows.h"

namespace mnemo::inference::v4 {
namespace {

std::vector<float> project(const Dims& dims, const float* x, int n, const WeightView& w) {
  std::vector<float> y(static_cast<size_t>(n) * w.rows);
  (void)kernels::linear(x, n, w, y.data());
  round_bf16(dims, y);
  return y;
}

// Indices of the top min(k, n_visible) indexer scores among entries [0, n_visible); ties go to the
// lowest index. The q.key dots are a GEMM of the heads against the keys as stored (FP4 codes and scales
// at serving, decoded in registers; one fixed-order dot each), then score = sum_h relu(dot_h) * w_h in
// head order.
std::vector<int> indexer_topk(const Dims& dims, const float* qi, const float* w, const KvRows& keys, int n_visible,
                              int heads, int dim, int k) {
  constexpr int kBlock = 1024;  // keys per GEMM, to bound the scratch at long contexts
  std::vector<float> score(static_cast<size_t>(n_visible));
  thread_local std::vector<float> dots;
  dots.resize(static_cast<size_t>(heads) * std::min(n_visible, kBlock));
  for (int b0 = 0; b0 < n_visible; b0 += kBlock) {
    const int nb = std::min(kBlock, n_visible - b0);
    kernels::WeightView kv{kernels::WeightType::kF32, keys.row(b0), nb, dim};
    if (serving_layout(dims)) {
      kv.type = kernels::WeightType::kFP4E2M1Group32;
      kv.scale_type = kernels::ScaleType::kUe8m0;
      kv.scale = keys.scale(b0);
    }
    kernels::linear_rows(qi, heads, kv, 0, nb, dots.data());
    for (int b = 0; b < nb; ++b) score[b0 + b] = 0;
    for (int h = 0; h < heads; ++h) {
      const float* dh = dots.data() + static_cast<size_t>(h) * nb;
      for (int b = 0; b < nb; ++b) score[b0 + b] += std::max(dh[b], 0.0f) * w[h];
    }
  }
  std::vector<int> idx(static_cast<size_t>(n_visible));
  std::iota(idx.begin(), idx.end(), 0);
  int take = std::min(k, n_visible);
  std::partial_sort(idx.begin(), idx.begin() + take, idx.end(), [&](int a, int b) {
    return score[a] != score[b] ? score[a] > score[b] : a < b;
  });
  idx.resize(static_cast<size_t>(take));
  std::sort(idx.begin(), idx.end());
  return idx;
}

// One row's attention over its keys, in the layout they are stored in.
void attend(const Dims& dims, const float* q, int n_heads, const std::vector<const uint8_t*>& keys, const float* sink,
            float scale, float* out) {
  const auto n_keys = static_cast<int64_t>(keys.size());
  if (serving_layout(dims)) {
    (void)kernels::attend_mqa_fp8(q, n_heads, fp8_row(dims), keys.data(), n_keys, sink, scale, out);
    return;
  }
  thread_local std::vector<const float*> rows;  // fp32 rows (kv_rows: 4-byte aligned records of floats)
  rows.resize(keys.size());
  for (size_t j = 0; j < keys.size(); ++j) rows[j] = reinterpret_cast<const float*>(keys[j]);
  (void)kernels::attend_mqa(q, n_heads, dims.head_dim, rows.data(), n_keys, sink, scale, out);
}

}  // namespace

void attention_forward(const Dims& dims, const AttentionParams& p, const RopeTable& rope, const float* x, int n,
                       std::span<const Segment> segments, float* out) {
  const int H = dims.n_heads, hd = dims.head_dim, W = dims.window;
  const float eps = dims.norm_eps;
  std::vector<int64_t> pos(static_cast<size_t>(n));
  for (const Segment& seg : segments) {
    for (int i = 0; i < seg.n; ++i) pos[seg.row0 + i] = seg.pos0 + i;
  }

  // Queries: low rank, normalised per head without weight, rotated at their position.
  std::vector<float> qa = project(dims, x, n, p.wq_a);
  for (int i = 0; i < n; ++i) rms_norm(&qa[i * dims.q_lora], dims.q_lora, p.q_norm.data(), eps, &qa[i * dims.q_lora]);
  round_bf16(dims, qa);
  std::vector<float> q = project(dims, qa.data(), n, p.wq_b);
  for (int i = 0; i < n; ++i) {
    for (int h = 0; h < H; ++h) {
      float* qh = &q[(static_cast<size_t>(i) * H + h) * hd];
      rms_norm(qh, hd, nullptr, eps, qh);
      rope.rotate(qh, hd, pos[i], 1);
    }
  }
  round_bf16(dims, q);
  // The shared key/value vector of each token.
  std::vector<float> kv = project(dims, x, n, p.wkv);
  for (int i = 0; i < n; ++i) {
    rms_norm(&kv[i * hd], hd, p.kv_norm.data(), eps, &kv[i * hd]);
    rope.rotate(&kv[i * hd], hd, pos[i], 1);
  }
  round_bf16(dims, kv);
  // The step's kv rows in the cache's layout (rounded as stored): the keys of its own rows, then the ring's.
  const int64_t rb = kv_rows(dims).row_bytes;
  std::vector<uint8_t> chunk(static_cast<size_t>(n * rb));
  for (int i = 0; i < n; ++i) store_kv(dims, &kv[static_cast<size_t>(i) * hd], &chunk[static_cast<size_t>(i * rb)]);

  // The indexer runs before the main compressor, and both before attention: a token sees the block it completes.
  std::vector<float> qi, iw;
  const int HI = dims.index_heads, DI = dims.index_dim;
  if (p.ratio == 4) {
    qi = project(dims, qa.data(), n, p.indexer.wq_b);
    for (int i = 0; i < n; ++i) {
      for (int h = 0; h < HI; ++h) {
        float* v = &qi[(static_cast<size_t>(i) * HI + h) * DI];
        rope.rotate(v, DI, pos[i], 1);
        hadamard(v, DI);
        if (dims.numerics == Numerics::kServing) kernels::fp4_round_trip(v, DI, 32);
      }
    }
    iw = project(dims, x, n, p.indexer.weights_proj);
    float wscale = 1.0f / std::sqrt(static_cast<float>(DI)) / std::sqrt(static_cast<float>(HI));
    for (float& v : iw) v *= wscale;
  }
  std::vector<float> ckv, cscore, ikv, iscore;
  if (p.ratio == 4) compressor_project(dims, p.indexer.compressor, x, n, ikv, iscore);
  if (p.ratio > 0) compressor_project(dims, p.compressor, x, n, ckv, cscore);
  for (const Segment& seg : segments) {
    if (p.ratio == 4) {
      const size_t at = static_cast<size_t>(seg.row0) * 2 * p.indexer.compressor.width;
      compress_tokens(dims, p.indexer.compressor, rope, &ikv[at], &iscore[at], seg.n, seg.pos0,
                      seg.state->index_compressor, seg.state->index_keys);
    }
    if (p.ratio > 0) {
      const size_t at = static_cast<size_t>(seg.row0) * (p.ratio == 4 ? 2 : 1) * p.compressor.width;
      compress_tokens(dims, p.compressor, rope, &ckv[at], &cscore[at], seg.n, seg.pos0, seg.state->compressor,
                      seg.state->entries);
    }
  }

  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<float> o(static_cast<size_t>(n) * H * hd, 0.0f);
  // Per row: its keys (window, then the selected or all compressed entries), found in parallel over rows.
  std::vector<std::vector<const uint8_t*>> keys(static_cast<size_t>(n));
  std::vector<int> seg_of(static_cast<size_t>(n));
  for (size_t si = 0; si < segments.size(); ++si) {
    for (int i = 0; i < segments[si].n; ++i) seg_of[segments[si].row0 + i] = static_cast<int>(si);
  }
  kernels::parallel_for(n, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const Segment& seg = segments[seg_of[r]];
      const LayerState& st = *seg.state;
      const uint8_t* seg_kv = &chunk[static_cast<size_t>(seg.row0 * rb)];
      const int64_t t = pos[r];
      auto& kr = keys[r];
      for (int64_t s = std::max<int64_t>(0, t - W + 1); s <= t; ++s) {
        kr.push_back(s >= seg.pos0 ? seg_kv + (s - seg.pos0) * rb : st.ring.row(s % W));
      }
      if (p.ratio == 0) continue;
      const int n_visible = static_cast<int>((t + 1) / p.ratio);
      if (p.ratio == 4) {
        for (int b : indexer_topk(dims, &qi[static_cast<size_t>(r) * HI * DI], &iw[static_cast<size_t>(r) * HI],
                                  st.index_keys, n_visible, HI, DI, dims.index_topk)) {
          kr.push_back(st.entries.row(b));
        }
      } else {
        for (int b = 0; b < n_visible; ++b) kr.push_back(st.entries.row(b));
      }
    }
  });
  // KV bytes read: the row's keys as stored, and every visible indexer key it scores.
  const KvRows key_rows = index_key_rows(dims);
  for (int r = 0; r < n; ++r) {
    const int64_t scanned = p.ratio == 4 ? (pos[r] + 1) / 4 * (key_rows.row_bytes + key_rows.scale_bytes) : 0;
    kernels::count_kv_bytes(static_cast<int64_t>(keys[r].size()) * rb + scanned);
  }
  // Rows x head groups in parallel (a lone decode row still splits its heads across the threads).
  const int groups = n >= kernels::thread_count() ? 1 : std::clamp(2 * kernels::thread_count() / n, 1, std::max(1, H / 4));
  const int per_group = (H + groups - 1) / groups;
  kernels::parallel_for(static_cast<int64_t>(n) * groups, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int r = static_cast<int>(i / groups), h0 = static_cast<int>(i % groups) * per_group;
      const int nh = std::min(per_group, H - h0);
      if (nh <= 0) continue;
      float* orow = &o[(static_cast<size_t>(r) * H + h0) * hd];
      attend(dims, &q[(static_cast<size_t>(r) * H + h0) * hd], nh, keys[r], p.sink.data() + h0, scale, orow);
      for (int h = 0; h < nh; ++h) rope.rotate(orow + static_cast<size_t>(h) * hd, hd, pos[r], -1);
    }
  });
  // Each segment's kv rows join its window ring.
  for (const Segment& seg : segments) {
    LayerState& st = *seg.state;
    const uint8_t* seg_kv = &chunk[static_cast<size_t>(seg.row0 * rb)];
    st.ring.data.resize(static_cast<size_t>(W * rb));
    for (int i = std::max(0, seg.n - W); i < seg.n; ++i) {
      std::copy_n(seg_kv + i * rb, rb, st.ring.row((seg.pos0 + i) % W));
    }
  }

  round_bf16(dims, o);
  // Grouped output: each group of heads is projected by its slice of wo_a, then wo_b mixes the groups.
  const int G = dims.o_groups, R = dims.o_lora, group_in = H * hd / G;
  std::vector<float> z(static_cast<size_t>(n) * G * R);
  std::vector<float> og(static_cast<size_t>(n) * group_in), zg(static_cast<size_t>(n) * R);
  for (int g = 0; g < G; ++g) {
    for (int i = 0; i < n; ++i) {
      std::copy_n(&o[static_cast<size_t>(i) * H * hd + static_cast<size_t>(g) * group_in], group_in,
                  &og[static_cast<size_t>(i) * group_in]);
    }
    (void)kernels::linear(og.data(), n, kernels::row_slice(p.wo_a, static_cast<int64_t>(g) * R, R), zg.data());
    for (int i = 0; i < n; ++i) std::copy_n(&zg[static_cast<size_t>(i) * R], R, &z[(static_cast<size_t>(i) * G + g) * R]);
  }
  round_bf16(dims, z);
  (void)kernels::linear(z.data(), n, p.wo_b, out);
  round_bf16(dims, out, static_cast<size_t>(n) * dims.d);
}

}  // namespace mnemo::inference::v4
