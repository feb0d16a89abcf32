#include "v4_moe.h"

#include <mnemo/kernels/linear.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "v4_math.h"

namespace mnemo::inference::v4 {
namespace {

// y = w2(silu(min(w1 x, L)) * clamp(w3 x, -L, L)) for the n rows of x.
void expert(const Dims& dims, const WeightView& w1, const WeightView& w2, const WeightView& w3, const float* x,
            int n, std::vector<float>& h1, std::vector<float>& h3, float* y) {
  const int inter = static_cast<int>(w1.rows);
  h1.resize(static_cast<size_t>(n) * inter);
  h3.resize(static_cast<size_t>(n) * inter);
  (void)kernels::linear(x, n, w1, h1.data());
  (void)kernels::linear(x, n, w3, h3.data());
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
  (void)kernels::linear(h1.data(), n, w2, y);
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
  std::vector<float> xe, ye;
  // Experts in id order: each token's sum has a fixed order whatever else is in the batch.
  for (int e = 0; e < E; ++e) {
    const auto& r = rows[e];
    if (r.empty()) continue;
    int m = static_cast<int>(r.size());
    xe.resize(static_cast<size_t>(m) * d);
    ye.resize(static_cast<size_t>(m) * d);
    for (int j = 0; j < m; ++j) std::copy_n(x + static_cast<size_t>(r[j]) * d, d, &xe[static_cast<size_t>(j) * d]);
    expert(dims, p.w1[e], p.w2[e], p.w3[e], xe.data(), m, h1, h3, ye.data());
    for (int j = 0; j < m; ++j) {
      float wgt = weights[e][j];
      float* o = out + static_cast<size_t>(r[j]) * d;
      for (int c = 0; c < d; ++c) o[c] += wgt * ye[static_cast<size_t>(j) * d + c];
    }
  }
  round_bf16(dims, out, static_cast<size_t>(n) * d);
}

}  // namespace mnemo::inference::v4
