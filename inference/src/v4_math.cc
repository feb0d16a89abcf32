#include "v4_math.h"

#include <algorithm>

namespace mnemo::inference::v4 {

RopeTable::RopeTable(const Dims& dims, bool compressed_layer) : rope_dim_(dims.rope_dim) {
  int half = dims.rope_dim / 2;
  double theta = compressed_layer ? dims.compress_theta : dims.rope_theta;
  freqs_.resize(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    freqs_[i] = 1.0 / std::pow(theta, 2.0 * i / dims.rope_dim);
  }
  if (!compressed_layer || dims.yarn_factor <= 1.0) return;
  // YaRN: blend between f/factor and f with a linear ramp over the dims between low and high.
  auto corr = [&](double beta) {
    return dims.rope_dim * std::log(dims.yarn_original_max / (beta * 2.0 * M_PI)) / (2.0 * std::log(theta));
  };
  double low = std::max(std::floor(corr(dims.yarn_beta_fast)), 0.0);
  double high = std::min(std::ceil(corr(dims.yarn_beta_slow)), static_cast<double>(dims.rope_dim - 1));
  if (high == low) high += 0.001;
  for (int i = 0; i < half; ++i) {
    double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    freqs_[i] = freqs_[i] / dims.yarn_factor * ramp + freqs_[i] * (1.0 - ramp);
  }
}

void RopeTable::rotate(float* v, int dim, int64_t pos, int sign) const {
  float* tail = v + (dim - rope_dim_);
  for (size_t i = 0; i < freqs_.size(); ++i) {
    // The angle in fp32, as the reference computes its table (outer product of fp32 positions and freqs).
    float angle = static_cast<float>(pos) * static_cast<float>(freqs_[i]);
    float c = std::cos(angle), s = std::sin(angle) * static_cast<float>(sign);
    float x0 = tail[2 * i], x1 = tail[2 * i + 1];
    tail[2 * i] = x0 * c - x1 * s;
    tail[2 * i + 1] = x0 * s + x1 * c;
  }
}

void hadamard(float* v, int n) {
  for (int len = 1; len < n; len <<= 1) {
    for (int i = 0; i < n; i += 2 * len) {
      for (int j = i; j < i + len; ++j) {
        float a = v[j], b = v[j + len];
        v[j] = a + b;
        v[j + len] = a - b;
      }
    }
  }
  float s = 1.0f / std::sqrt(static_cast<float>(n));
  for (int i = 0; i < n; ++i) v[i] *= s;
}

}  // namespace mnemo::inference::v4
