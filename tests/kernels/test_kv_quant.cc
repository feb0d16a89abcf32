#include <mnemo/kernels/kv_quant.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

using namespace mnemo::kernels;

TEST_CASE("E2M1 rounding goes to the nearest value with ties to the even mantissa", "[kernels][quant]") {
  // The cases golden-tiny's README spells out, and every representable value.
  CHECK(round_e2m1(0.25f) == 0.0f);
  CHECK(round_e2m1(0.75f) == 1.0f);
  CHECK(round_e2m1(1.25f) == 1.0f);
  CHECK(round_e2m1(2.5f) == 2.0f);
  CHECK(round_e2m1(5.0f) == 4.0f);
  CHECK(round_e2m1(-5.5f) == -6.0f);
  for (float v : {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f}) {
    CHECK(round_e2m1(v) == v);
    CHECK(round_e2m1(-v) == -v);
  }
}

TEST_CASE("E4M3 rounding keeps 3 mantissa bits with subnormals spaced 2^-9", "[kernels][quant]") {
  CHECK(round_e4m3(448.0f) == 448.0f);
  CHECK(round_e4m3(19.0f) == 20.0f);   // tie between 18 and 20: the even mantissa
  CHECK(round_e4m3(17.0f) == 16.0f);   // tie between 16 and 18
  CHECK(round_e4m3(18.9f) == 18.0f);
  CHECK(round_e4m3(std::ldexp(1.0f, -9)) == std::ldexp(1.0f, -9));
  CHECK(round_e4m3(std::ldexp(1.4f, -10)) == std::ldexp(1.0f, -9));  // nearest subnormal step
  CHECK(round_e4m3(std::ldexp(1.0f, -11)) == 0.0f);                  // ties to zero (even)
}

TEST_CASE("ceil_log2 is exact from the bits, powers of two included", "[kernels][quant]") {
  CHECK(ceil_log2(1.0f) == 0);
  CHECK(ceil_log2(1.0000001f) == 1);
  CHECK(ceil_log2(0.5f) == -1);
  CHECK(ceil_log2(3.0f) == 2);
  CHECK(ceil_log2(std::ldexp(1.0f, -126)) == -126);
}

TEST_CASE("FP8 round trip uses a power-of-two scale per block of 64", "[kernels][quant]") {
  std::vector<float> v(128);
  for (int i = 0; i < 128; ++i) v[i] = (i < 64 ? 0.01f : 100.0f) * std::sin(0.37f * i + 0.1f);
  std::vector<float> r = v;
  fp8_round_trip(r.data(), 128, 64);
  for (int b = 0; b < 2; ++b) {
    float amax = 0;
    for (int i = b * 64; i < b * 64 + 64; ++i) amax = std::max(amax, std::fabs(v[i]));
    float scale = std::ldexp(1.0f, ceil_log2(amax / 448.0f));
    for (int i = b * 64; i < b * 64 + 64; ++i) {
      // Every result is scale * an E4M3 value, and within half a step of the input.
      CHECK(round_e4m3(r[i] / scale) == r[i] / scale);
      CHECK(std::fabs(r[i] - v[i]) <= std::fabs(v[i]) / 16 + scale * std::ldexp(1.0f, -10));
    }
  }
}

TEST_CASE("FP4 round trip maps every block onto scale * {0, 0.5, ..., 6}", "[kernels][quant]") {
  std::vector<float> v(128);
  for (int i = 0; i < 128; ++i) v[i] = std::cos(1.3f * i) * (1 + i % 7);
  std::vector<float> r = v;
  fp4_round_trip(r.data(), 128, 32);
  for (int b = 0; b < 4; ++b) {
    float amax = 0;
    for (int i = b * 32; i < b * 32 + 32; ++i) amax = std::max(amax, std::fabs(v[i]));
    float scale = std::ldexp(1.0f, ceil_log2(amax / 6.0f));
    for (int i = b * 32; i < b * 32 + 32; ++i) CHECK(round_e2m1(r[i] / scale) == r[i] / scale);
  }
}
