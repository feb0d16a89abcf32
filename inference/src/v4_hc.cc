#include "v4_hc.h"

#include <mnemo/kernels/linear.h>

#include <cmath>
#include <vector>

#include "v4_math.h"

namespace mnemo::inference::v4 {
namespace {

// mix[n, n_mix] = (fn . flatten(X)) * rsqrt(mean(flatten(X)^2) + eps).
std::vector<float> mix(const Dims& dims, const HcParams& p, const float* X, int n) {
  const int width = dims.hc * dims.d;
  std::vector<float> m(static_cast<size_t>(n) * p.n_mix);
  kernels::WeightView fn{kernels::WeightType::kF32, p.fn.data(), p.n_mix, width};
  (void)kernels::linear(X, n, fn, m.data());
  for (int i = 0; i < n; ++i) {
    const float* x = X + static_cast<size_t>(i) * width;
    float ss = 0;
    for (int c = 0; c < width; ++c) ss += x[c] * x[c];
    float r = 1.0f / std::sqrt(ss / static_cast<float>(width) + dims.norm_eps);
    for (int j = 0; j < p.n_mix; ++j) m[static_cast<size_t>(i) * p.n_mix + j] *= r;
  }
  return m;
}

void weighted_sum(const Dims& dims, const float* X, const float* pre, float* u) {
  for (int c = 0; c < dims.d; ++c) {
    float s = 0;
    for (int j = 0; j < dims.hc; ++j) s += pre[j] * X[static_cast<size_t>(j) * dims.d + c];
    u[c] = s;
  }
}

}  // namespace

void hc_pre(const Dims& dims, const HcParams& p, const float* X, int n, float* u, float* post, float* comb) {
  const int hc = dims.hc;
  const float eps = dims.hc_eps;
  std::vector<float> m = mix(dims, p, X, n);
  std::vector<float> pre(static_cast<size_t>(hc));
  for (int i = 0; i < n; ++i) {
    const float* mi = &m[static_cast<size_t>(i) * p.n_mix];
    for (int j = 0; j < hc; ++j) {
      pre[j] = sigmoid(mi[j] * p.scale[0] + p.base[j]) + eps;
      post[i * hc + j] = 2.0f * sigmoid(mi[hc + j] * p.scale[1] + p.base[hc + j]);
    }
    float* C = comb + static_cast<size_t>(i) * hc * hc;
    for (int j = 0; j < hc; ++j) {
      float mx = -INFINITY;
      for (int k = 0; k < hc; ++k) {
        C[j * hc + k] = mi[2 * hc + j * hc + k] * p.scale[2] + p.base[2 * hc + j * hc + k];
        mx = std::max(mx, C[j * hc + k]);
      }
      float sum = 0;
      for (int k = 0; k < hc; ++k) sum += C[j * hc + k] = std::exp(C[j * hc + k] - mx);
      for (int k = 0; k < hc; ++k) C[j * hc + k] = C[j * hc + k] / sum + eps;
    }
    auto normalise_columns = [&] {
      for (int k = 0; k < hc; ++k) {
        float s = 0;
        for (int j = 0; j < hc; ++j) s += C[j * hc + k];
        for (int j = 0; j < hc; ++j) C[j * hc + k] /= s + eps;
      }
    };
    normalise_columns();
    for (int it = 1; it < dims.sinkhorn_iters; ++it) {
      for (int j = 0; j < hc; ++j) {
        float s = 0;
        for (int k = 0; k < hc; ++k) s += C[j * hc + k];
        for (int k = 0; k < hc; ++k) C[j * hc + k] /= s + eps;
      }
      normalise_columns();
    }
    weighted_sum(dims, X + static_cast<size_t>(i) * hc * dims.d, pre.data(), u + static_cast<size_t>(i) * dims.d);
  }
}

void hc_post(const Dims& dims, const float* X, const float* y, const float* post, const float* comb, int n,
             float* X_out) {
  const int hc = dims.hc, d = dims.d;
  for (int i = 0; i < n; ++i) {
    const float* Xi = X + static_cast<size_t>(i) * hc * d;
    const float* C = comb + static_cast<size_t>(i) * hc * hc;
    for (int k = 0; k < hc; ++k) {
      float* o = X_out + (static_cast<size_t>(i) * hc + k) * d;
      for (int c = 0; c < d; ++c) {
        float s = post[i * hc + k] * y[static_cast<size_t>(i) * d + c];
        for (int j = 0; j < hc; ++j) s += C[j * hc + k] * Xi[static_cast<size_t>(j) * d + c];
        o[c] = s;
      }
    }
  }
}

void hc_head(const Dims& dims, const HcParams& p, const float* X, int n, float* h) {
  std::vector<float> m = mix(dims, p, X, n);
  std::vector<float> pre(static_cast<size_t>(dims.hc));
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < dims.hc; ++j) {
      pre[j] = sigmoid(m[static_cast<size_t>(i) * p.n_mix + j] * p.scale[0] + p.base[j]) + dims.hc_eps;
    }
    weighted_sum(dims, X + static_cast<size_t>(i) * dims.hc * dims.d, pre.data(), h + static_cast<size_t>(i) * dims.d);
  }
}

}  // namespace mnemo::inference::v4
