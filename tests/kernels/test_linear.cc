// Op test: the linear kernel against its plain scalar reference, and its batch invariance.
#include <mnemo/kernels/linear.h>
#include <mnemo/kernels/numeric.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "../../kernels/cpu/linear_cpu.h"

using namespace mnemo::kernels;

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(static_cast<int32_t>(seed >> 8) % 2000) / 1000.0f;
  }
  return v;
}

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - want[i]) * static_cast<double>(got[i] - want[i]);
    den += want[i] * static_cast<double>(want[i]);
  }
  return num / den;
}

}  // namespace

TEST_CASE("linear matches the scalar reference for F32 and BF16 weights", "[kernels][linear]") {
  for (int64_t cols : {1, 7, 64, 129, 512}) {
    const int64_t rows = 33, tokens = 5;
    auto x = random_floats(static_cast<size_t>(tokens * cols), 1);
    auto wf = random_floats(static_cast<size_t>(rows * cols), 2);
    std::vector<uint16_t> wb(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) wb[i] = f32_to_bf16(wf[i]);
    for (auto [type, data] : {std::pair<WeightType, const void*>{WeightType::kF32, wf.data()},
                              std::pair<WeightType, const void*>{WeightType::kBF16, wb.data()}}) {
      WeightView w{type, data, rows, cols};
      std::vector<float> got(static_cast<size_t>(tokens * rows)), want(got.size());
      REQUIRE(linear(x.data(), tokens, w, got.data()));
      cpu::linear_reference(x.data(), tokens, w, want.data());
      CHECK(nmse(got, want) < 1e-12);
    }
  }
}

TEST_CASE("linear gives each token the same bits whatever the batch around it", "[kernels][linear]") {
  const int64_t rows = 64, cols = 300, tokens = 9;
  auto x = random_floats(static_cast<size_t>(tokens * cols), 3);
  auto wf = random_floats(static_cast<size_t>(rows * cols), 4);
  WeightView w{WeightType::kF32, wf.data(), rows, cols};
  std::vector<float> batched(static_cast<size_t>(tokens * rows));
  REQUIRE(linear(x.data(), tokens, w, batched.data()));
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<float> alone(static_cast<size_t>(rows));
    REQUIRE(linear(x.data() + t * cols, 1, w, alone.data()));
    CHECK(std::memcmp(alone.data(), batched.data() + t * rows, sizeof(float) * rows) == 0);
  }
}

TEST_CASE("linear refuses null buffers and empty shapes with an error", "[kernels][linear]") {
  WeightView w{WeightType::kF32, nullptr, 4, 4};
  float y[4];
  CHECK_FALSE(linear(nullptr, 1, w, y));
}

#include <mnemo/kernels/thread_pool.h>

#include <atomic>

TEST_CASE("parallel_for covers every index exactly once", "[kernels][threads]") {
  for (int64_t n : {1, 5, 1000, 100003}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    parallel_for(n, 7, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
    });
    for (auto& h : hits) REQUIRE(h.load() == 1);
  }
}

TEST_CASE("a large linear split across threads gives the single-thread bits", "[kernels][threads]") {
  const int64_t rows = 2048, cols = 512;
  auto x = random_floats(static_cast<size_t>(cols) * 3, 5);
  auto wf = random_floats(static_cast<size_t>(rows * cols), 6);
  WeightView w{WeightType::kF32, wf.data(), rows, cols};
  std::vector<float> threaded(static_cast<size_t>(3 * rows)), serial(threaded.size());
  REQUIRE(linear(x.data(), 3, w, threaded.data()));
  linear_rows(x.data(), 3, w, 0, rows, serial.data());
  CHECK(std::memcmp(threaded.data(), serial.data(), serial.size() * sizeof(float)) == 0);
}
