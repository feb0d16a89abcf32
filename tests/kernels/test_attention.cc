// Op test: multi-query attention of one row (attend_mqa) against a double-precision reference, and its
// AVX2 and scalar paths against each other bit for bit.
#include <mnemo/kernels/attention.h>
#include <mnemo/kernels/cpu_features.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "../../kernels/cpu/attention_cpu.h"

using namespace mnemo::kernels;

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(static_cast<int32_t>(seed >> 8) % 2000) / 1000.0f - 1.0f;
  }
  return v;
}

std::vector<float> reference(const std::vector<float>& q, int heads, int dim, const std::vector<const float*>& keys,
                             const std::vector<float>& sink, double scale) {
  std::vector<float> out(static_cast<size_t>(heads) * dim);
  for (int h = 0; h < heads; ++h) {
    std::vector<double> s(keys.size());
    double m = -INFINITY;
    for (size_t j = 0; j < keys.size(); ++j) {
      double d = 0;
      for (int c = 0; c < dim; ++c) d += static_cast<double>(q[h * dim + c]) * keys[j][c];
      s[j] = d * scale;
      m = std::max(m, s[j]);
    }
    double denom = std::exp(sink[h] - m);
    for (double& v : s) denom += (v = std::exp(v - m));
    for (int c = 0; c < dim; ++c) {
      double o = 0;
      for (size_t j = 0; j < keys.size(); ++j) o += s[j] / denom * keys[j][c];
      out[h * dim + c] = static_cast<float>(o);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("attend_mqa matches a double-precision reference and its paths agree bit for bit", "[kernels][attention]") {
  for (auto [heads, dim, n_keys] : {std::tuple{16, 512, 200}, std::tuple{8, 128, 1}, std::tuple{5, 64, 37},
                                    std::tuple{3, 48, 10}}) {
    auto q = random_floats(static_cast<size_t>(heads) * dim, 1);
    auto pool = random_floats(static_cast<size_t>(n_keys + 5) * dim, 2);
    auto sink = random_floats(static_cast<size_t>(heads), 3);
    // Keys in a scattered order, as the window ring and the selected entries are.
    std::vector<const float*> keys;
    for (int j = 0; j < n_keys; ++j) keys.push_back(pool.data() + static_cast<size_t>((j * 7) % (n_keys + 5)) * dim);
    const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
    std::vector<float> got(q.size()), scalar(q.size());
    REQUIRE(attend_mqa(q.data(), heads, dim, keys.data(), n_keys, sink.data(), scale, got.data()));
    cpu::attend_mqa_scalar(q.data(), heads, dim, keys.data(), n_keys, sink.data(), scale, scalar.data());
    auto want = reference(q, heads, dim, keys, sink, scale);
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      num += std::pow(got[i] - static_cast<double>(want[i]), 2);
      den += std::pow(static_cast<double>(want[i]), 2);
    }
    INFO(heads << " heads, dim " << dim << ", " << n_keys << " keys");
    CHECK(num / den < 1e-11);
    if (isa_supported(Isa::kAvx2)) {
      std::vector<float> avx2(q.size());
      cpu::attend_mqa_avx2(q.data(), heads, dim, keys.data(), n_keys, sink.data(), scale, avx2.data());
      CHECK(std::memcmp(avx2.data(), scalar.data(), scalar.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("attend_mqa over serving-layout keys equals attend_mqa over the decoded keys, on every path",
          "[kernels][attention]") {
  for (auto [heads, dim, rope, n_keys] : {std::tuple{16, 512, 64, 300}, std::tuple{4, 128, 64, 9}, std::tuple{3, 64, 0, 5},
                                          std::tuple{2, 48, 16, 3}}) {
    const Fp8KvRow row{dim, rope, rope % 32 == 16};  // fp32 rope dims, and bf16 in the last case
    auto q = random_floats(static_cast<size_t>(heads) * dim, 4);
    auto sink = random_floats(static_cast<size_t>(heads), 5);
    auto values = random_floats(static_cast<size_t>(n_keys) * dim, 6);
    for (size_t i = 0; i < values.size(); ++i) values[i] *= static_cast<float>(1 + i % 5);
    std::vector<uint8_t> records(static_cast<size_t>(n_keys) * row.bytes());
    for (int j = 0; j < n_keys; ++j) {
      fp8_kv_encode(row, values.data() + static_cast<size_t>(j) * dim, records.data() + static_cast<size_t>(j) * row.bytes());
    }
    std::vector<const float*> keys;
    std::vector<const uint8_t*> packed;
    for (int j = 0; j < n_keys; ++j) {
      const int at = (j * 5) % n_keys;  // scattered, as the ring and the selected entries are
      keys.push_back(values.data() + static_cast<size_t>(at) * dim);
      packed.push_back(records.data() + static_cast<size_t>(at) * row.bytes());
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
    std::vector<float> want(q.size()), got(q.size()), scalar(q.size());
    cpu::attend_mqa_scalar(q.data(), heads, dim, keys.data(), n_keys, sink.data(), scale, want.data());
    REQUIRE(attend_mqa_fp8(q.data(), heads, row, packed.data(), n_keys, sink.data(), scale, got.data()));
    cpu::attend_mqa_fp8_scalar(q.data(), heads, row, packed.data(), n_keys, sink.data(), scale, scalar.data());
    INFO(heads << " heads, dim " << dim << ", rope " << rope << ", " << n_keys << " keys");
    CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(scalar.data(), want.data(), want.size() * sizeof(float)) == 0);
    if (isa_supported(Isa::kAvx2) && dim % 16 == 0) {
      std::vector<float> avx2(q.size());
      cpu::attend_mqa_fp8_avx2(q.data(), heads, row, packed.data(), n_keys, sink.data(), scale, avx2.data());
      CHECK(std::memcmp(avx2.data(), want.data(), want.size() * sizeof(float)) == 0);
    }
  }
}
