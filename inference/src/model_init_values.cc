#include "model_init_values.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>
#include <vector>

#include <mnemo/inference/dtype.h>

namespace mnemo::inference::init {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  return h;
}

// xoshiro256**: fast, and seeded from splitmix64 as its authors recommend.
class Rng {
 public:
  Rng(uint64_t seed, std::string_view name, int64_t group) {
    uint64_t x =
        splitmix64(seed) ^ fnv1a(name) ^ splitmix64(static_cast<uint64_t>(group) + 0x1234567ull);
    for (uint64_t& w : s_) w = x = splitmix64(x);
  }
  uint64_t next() {
    uint64_t r = rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform in (0, 1].
  float uniform() { return static_cast<float>((next() >> 40) + 1) * 0x1p-24f; }
  // Box-Muller: two standard normals per pair of uniforms.
  void normal_pair(float& z0, float& z1) {
    float r = std::sqrt(-2.0f * std::log(uniform()));
    float t = 6.28318530717958647692f * uniform();
    z0 = r * std::cos(t);
    z1 = r * std::sin(t);
  }
  uint64_t below(uint64_t n) { return (next() >> 11) % n; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void fill(const Rule& rule, Rng& rng, float* out, int64_t n) {
  switch (rule.kind) {
    case Rule::kUniform:
      for (int64_t i = 0; i < n; ++i) out[i] = rule.a + (rule.b - rule.a) * rng.uniform();
      return;
    case Rule::kNormal:
    case Rule::kOnePlusNormal: {
      float base = rule.kind == Rule::kOnePlusNormal ? 1.0f : 0.0f;
      for (int64_t i = 0; i < n; i += 2) {
        float z0, z1;
        rng.normal_pair(z0, z1);
        out[i] = base + rule.a * z0;
        if (i + 1 < n) out[i + 1] = base + rule.a * z1;
      }
      return;
    }
    case Rule::kDistinctIds:
      break;
  }
}

// 2^ceil(log2(t)) for t > 0, exact (as golden-tiny's README computes it from the float bits).
float pow2_ceil(float t, int& exponent) {
  int e;
  float m = std::frexp(t, &e);  // t = m * 2^e, m in [0.5, 1)
  exponent = m == 0.5f ? e - 1 : e;
  return std::ldexp(1.0f, exponent);
}

}  // namespace

Rule rule_for(const TensorSpec& spec, const ModelConfig& c) {
  std::string_view n = spec.name;
  if (ends_with(n, "tid2eid"))
    return {Rule::kDistinctIds, 0, static_cast<float>(c.n_routed_experts)};
  if (n == "embed.weight") return {Rule::kNormal, 1.0f, 0};
  if (n == "head.weight")
    return {Rule::kNormal, 2.0f / std::sqrt(static_cast<float>(c.hidden_size)), 0};
  if (ends_with(n, "norm.weight")) return {Rule::kOnePlusNormal, 0.1f, 0};
  if (ends_with(n, "_fn")) return {Rule::kNormal, 0.02f, 0};
  if (ends_with(n, "_base")) return {Rule::kNormal, 0.5f, 0};
  if (ends_with(n, "_scale")) return {Rule::kUniform, 0.5f, 1.5f};
  if (ends_with(n, "attn_sink")) return {Rule::kNormal, 1.0f, 0};
  if (ends_with(n, ".ape")) return {Rule::kNormal, 0.5f, 0};
  if (ends_with(n, "gate.bias")) return {Rule::kNormal, 0.1f, 0};
  float std = 1.0f / std::sqrt(static_cast<float>(logical_cols(spec)));
  // Larger experts push some activations past swiglu_limit, so the clamp is exercised
  // (golden-tiny).
  if (spec.expert >= 0 && spec.expert % 4 == 0 &&
      (ends_with(n, ".w1.weight") || ends_with(n, ".w3.weight"))) {
    std *= 6.0f;
  }
  if (ends_with(n, "shared_experts.w3.weight")) std *= 4.0f;
  return {Rule::kNormal, std, 0};
}

int64_t logical_rows(const TensorSpec& spec) { return spec.shape.empty() ? 1 : spec.shape[0]; }

int64_t logical_cols(const TensorSpec& spec) {
  if (spec.shape.size() < 2) return 1;
  return spec.storage == Storage::kFp4Packed ? spec.shape[1] * 2 : spec.shape[1];
}

void encode_group(const TensorSpec& spec, const ModelConfig& config, uint64_t seed, int64_t group,
                  uint8_t* out, uint8_t* scale) {
  const int64_t rows_total = logical_rows(spec);
  const int64_t cols = logical_cols(spec);
  const int64_t row0 = group * kInitGroupRows;
  const int64_t rows = std::min(kInitGroupRows, rows_total - row0);
  Rng rng(seed, spec.name, group);
  Rule rule = rule_for(spec, config);
  if (rule.kind == Rule::kDistinctIds) {
    const int64_t choices = static_cast<int64_t>(rule.b);
    std::vector<int64_t> ids(static_cast<size_t>(choices));
    for (int64_t r = 0; r < rows; ++r) {
      // Partial Fisher-Yates: the first `cols` picks are distinct.
      for (int64_t i = 0; i < choices; ++i) ids[i] = i;
      for (int64_t i = 0; i < cols; ++i) {
        int64_t j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(choices - i)));
        std::swap(ids[i], ids[j]);
        int64_t v = ids[i];
        if (spec.dtype == DType::kI32) {
          auto v32 = static_cast<int32_t>(v);
          std::memcpy(out + (r * cols + i) * 4, &v32, 4);
        } else {
          std::memcpy(out + (r * cols + i) * 8, &v, 8);
        }
      }
    }
    return;
  }
  std::vector<float> v(static_cast<size_t>(rows * cols));
  fill(rule, rng, v.data(), rows * cols);
  switch (spec.storage) {
    case Storage::kPlain:
    case Storage::kScale:
      if (spec.dtype == DType::kF32) {
        std::memcpy(out, v.data(), v.size() * 4);
      } else {
        for (size_t i = 0; i < v.size(); ++i) {
          uint16_t b = f32_to_bf16(v[i]);
          std::memcpy(out + 2 * i, &b, 2);
        }
      }
      return;
    case Storage::kFp8Block: {
      // One power-of-two scale per 128x128 block; this group is one block row.
      const int64_t scale_cols = (cols + 127) / 128;
      for (int64_t bc = 0; bc < scale_cols; ++bc) {
        const int64_t c0 = bc * 128, c1 = std::min(cols, c0 + 128);
        float amax = 1e-4f;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(v[r * cols + c]));
        }
        int e;
        float s = pow2_ceil(amax * (1.0f / 448.0f), e);
        scale[group * scale_cols + bc] = ue8m0_from_exponent(e);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = c0; c < c1; ++c) out[r * cols + c] = f32_to_e4m3(v[r * cols + c] / s);
        }
      }
      return;
    }
    case Storage::kFp4Packed: {
      // One power-of-two scale per 32 inputs of a row; low nibble = even element.
      const int64_t scale_cols = (cols + 31) / 32;
      const int64_t packed_cols = (cols + 1) / 2;
      for (int64_t r = 0; r < rows; ++r) {
        const float* x = &v[r * cols];
        uint8_t* packed = out + r * packed_cols;
        std::memset(packed, 0, static_cast<size_t>(packed_cols));
        for (int64_t bc = 0; bc < scale_cols; ++bc) {
          const int64_t c0 = bc * 32, c1 = std::min(cols, c0 + 32);
          float amax = 6.0f * 0x1p-126f;
          for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[c]));
          int e;
          float s = pow2_ceil(amax * (1.0f / 6.0f), e);
          scale[(row0 + r) * scale_cols + bc] = ue8m0_from_exponent(e);
          for (int64_t c = c0; c < c1; ++c) {
            uint8_t q = f32_to_e2m1(x[c] / s);
            packed[c / 2] |= (c % 2 == 0) ? q : static_cast<uint8_t>(q << 4);
          }
        }
      }
      return;
    }
  }
}

}  // namespace mnemo::inference::init
