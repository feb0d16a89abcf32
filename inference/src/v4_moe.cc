#include "v4_moe.h"

#include <mnemo/kernels/linear.h>
#include <mnemo/kernels/thread_pool.h>
#include <mnemo/kernels/traffic.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <vector>

#include "v4_math.h"

namespace mnemo::inference::v4 {
namespace {

// y = w = x W^T on all threads (rows split), or on the calling thread alone inside a parallel region.
void matmul(const float* x, int n, const WeightView& w, float* y, bool threaded) {
  if (threaded) {
    (void)kernels::linear(x, n, w, y);
  } else {
    kernels::linear_rows(x, n, w, 0, w.rows, y);
  }
}

// y = w2(silu(min(w1 x, L)) * clamp(w3 x, -L, L)) for the n rows of x.
void expert(const Dims& dims, const WeightView& w1, const WeightView& w2, const WeightView& w3, const float* x,
            int n, std::vector<float>& h1, std::vector<float>& h3, float* y, bool threaded = true) {
  const int inter = static_cast<int>(w1.rows);
  h1.resize(static_cast<size_t>(n) * inter);
  h3.resize(static_cast<size_t>(n) * inter);
  matmul(x, n, w1, h1.data(), threaded);
  matmul(x, n, w3, h3.data(), threaded);
  round_bf16(dims, h1);
  round_bf16(dims, h3);
  const float limit = dims.swiglu_limit;
  for (size_t i = 0; i < h1.size(); ++i) {
    float g = h1[i], u = h3[i];
    if (limit > 0) {
      g = std::min(g, limit);
      u = std::clamp(u, -limit, limit);
    }
    h1[i] = silu(g) * u;
  }
  round_bf16(dims, h1);
  matmul(h1.data(), n, w2, y, threaded);
  round_bf16(dims, y, static_cast<size_t>(n) * w2.rows);
}

}  // namespace

void moe_forward(const Dims& dims, const MoeParams& p, const float* x, const int32_t* tokens, int n, float* out) {
  const int E = dims.n_experts, k = dims.n_active, d = dims.d;
  std::vector<float> logits(static_cast<size_t>(n) * E);
  (void)kernels::linear(x, n, p.gate, logits.data());

  // Per expert: the tokens routed to it and their weights, so each expert runs once over its tokens.
  std::vector<std::vector<int>> rows(static_cast<size_t>(E));
  std::vector<std::vector<float>> weights(static_cast<size_t>(E));
  std::vector<int> order(static_cast<size_t>(E));
  std::vector<float> s(static_cast<size_t>(E)), biased(static_cast<size_t>(E));
  std::vector<int> chosen(static_cast<size_t>(k));
  for (int i = 0; i < n; ++i) {
    for (int e = 0; e < E; ++e) s[e] = std::sqrt(softplus(logits[static_cast<size_t>(i) * E + e]));
    if (!p.tid2eid.empty()) {
      for (int j = 0; j < k; ++j) chosen[j] = p.tid2eid[static_cast<size_t>(tokens[i]) * k + j];
    } else {
      for (int e = 0; e < E; ++e) biased[e] = s[e] + (p.gate_bias.empty() ? 0.0f : p.gate_bias[e]);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
        return biased[a] != biased[b] ? biased[a] > biased[b] : a < b;
      });
      std::copy_n(order.begin(), k, chosen.begin());
    }
    float sum = 0;
    for (int e : chosen) sum += s[e];
    for (int e : chosen) {
      rows[e].push_back(i);
      weights[e].push_back(s[e] / sum * dims.route_scale);
    }
  }

  std::vector<float> h1, h3;
  expert(dims, p.shared_w1, p.shared_w2, p.shared_w3, x, n, h1, h3, out);
  // The routed experts run in parallel, one expert per task on one thread (each still reads its weights
  // once for all its tokens); their outputs are then added in expert id order, a fixed order per token.
  std::vector<int> active;
  std::vector<size_t> offset;
  size_t total_rows = 0;
  for (int e = 0; e < E; ++e) {
    if (rows[e].empty()) continue;
    active.push_back(e);
    offset.push_back(total_rows);
    total_rows += rows[e].size();
  }
  std::vector<float> ye(total_rows * d);
  const auto start = std::chrono::steady_clock::now();
  kernels::parallel_for(static_cast<int64_t>(active.size()), 1, [&](int64_t a0, int64_t a1) {
    thread_local std::vector<float> xe, t1, t3;
    for (int64_t a = a0; a < a1; ++a) {
      const int e = active[a];
      const auto& r = rows[e];
      const int m = static_cast<int>(r.size());
      xe.resize(static_cast<size_t>(m) * d);
      for (int j = 0; j < m; ++j) std::copy_n(x + static_cast<size_t>(r[j]) * d, d, &xe[static_cast<size_t>(j) * d]);
      expert(dims, p.w1[e], p.w2[e], p.w3[e], xe.data(), m, t1, t3, &ye[offset[a] * d], false);
    }
  });
  if (kernels::traffic_counting()) {
    // Counted here, on the calling thread: the region's wall time is the matmuls'.
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
    for (size_t a = 0; a < active.size(); ++a) {
      const int e = active[a], m = static_cast<int>(rows[e].size());
      kernels::count_matmul(p.w1[e], m, a == 0 ? ns.count() : 0);
      kernels::count_matmul(p.w3[e], m, 0);
      kernels::count_matmul(p.w2[e], m, 0);
    }
  }
  for (size_t a = 0; a < active.size(); ++a) {
    const int e = active[a];
    for (size_t j = 0; j < rows[e].size(); ++j) {
      const float wgt = weights[e][j];
      float* o = out + static_cast<size_t>(rows[e][j]) * d;
      const float* yj = &ye[(offset[a] + j) * d];
      for (int c = 0; c < d; ++c) o[c] += wgt * yj[c];
    }
  }
  round_bf16(dims, out, static_cast<size_t>(n) * d);
}

}  // namespace mnemo::inference::v4
