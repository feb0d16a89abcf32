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

TEST_CASE("linear reads FP8 block-scaled and FP4 group-scaled weights like the scalar reference", "[kernels][linear]") {
  const int64_t rows = 200, cols = 320, tokens = 3;
  auto x = random_floats(static_cast<size_t>(tokens * cols), 7);
  std::vector<uint8_t> fp8(static_cast<size_t>(rows * cols)), fp4(static_cast<size_t>(rows * cols / 2));
  uint32_t seed = 11;
  auto next = [&] { return seed = seed * 1664525u + 1013904223u; };
  for (auto& b : fp8) {
    do b = static_cast<uint8_t>(next() >> 24); while ((b & 0x7F) == 0x7F);  // no NaN codes
  }
  for (auto& b : fp4) b = static_cast<uint8_t>(next() >> 24);
  std::vector<uint8_t> fp8_scale(static_cast<size_t>(((rows + 127) / 128) * ((cols + 127) / 128)));
  std::vector<uint8_t> fp4_scale(static_cast<size_t>(rows * (cols / 32)));
  for (auto& s : fp8_scale) s = static_cast<uint8_t>(120 + next() % 8);
  for (auto& s : fp4_scale) s = static_cast<uint8_t>(122 + next() % 8);
  WeightView w8{WeightType::kF8E4M3Block128, fp8.data(), rows, cols, ScaleType::kUe8m0, fp8_scale.data()};
  WeightView w4{WeightType::kFP4E2M1Group32, fp4.data(), rows, cols, ScaleType::kUe8m0, fp4_scale.data()};
  for (const WeightView& w : {w8, w4}) {
    std::vector<float> got(static_cast<size_t>(tokens * rows)), want(got.size());
    REQUIRE(linear(x.data(), tokens, w, got.data()));
    cpu::linear_reference(x.data(), tokens, w, want.data());
    CHECK(nmse(got, want) < 1e-10);
  }
  // Row slices of an FP8 matrix, on and inside a 128-row block, read the right scales.
  std::vector<float> full(static_cast<size_t>(tokens * rows));
  REQUIRE(linear(x.data(), tokens, w8, full.data()));
  for (int64_t row0 : {int64_t{128}, int64_t{64}}) {
    WeightView tail = row_slice(w8, row0, rows - row0);
    std::vector<float> part(static_cast<size_t>(tokens * (rows - row0)));
    REQUIRE(linear(x.data(), tokens, tail, part.data()));
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t r = row0; r < rows; ++r) CHECK(part[t * (rows - row0) + (r - row0)] == full[t * rows + r]);
    }
  }
  WeightView no_scale = w8;
  no_scale.scale = nullptr;
  CHECK_FALSE(linear(x.data(), tokens, no_scale, full.data()));
}

TEST_CASE("FP4 nibbles: the low nibble is the even element", "[kernels][linear]") {
  // One row of 32 inputs: element 0 = 1.0 (code 2, low nibble), element 1 = -6.0 (code 15, high nibble).
  std::vector<uint8_t> packed(16, 0);
  packed[0] = static_cast<uint8_t>(0x2 | (0xF << 4));
  uint8_t scale = 127;  // 2^0
  WeightView w{WeightType::kFP4E2M1Group32, packed.data(), 1, 32, ScaleType::kUe8m0, &scale};
  std::vector<float> x(32, 0.0f);
  x[0] = 1.0f;
  float y = 0;
  REQUIRE(linear(x.data(), 1, w, &y));
  CHECK(y == 1.0f);
  x[0] = 0.0f;
  x[1] = 1.0f;
  REQUIRE(linear(x.data(), 1, w, &y));
  CHECK(y == -6.0f);
}
