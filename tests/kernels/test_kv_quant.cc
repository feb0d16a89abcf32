#include <mnemo/kernels/kv_quant.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include <mnemo/kernels/numeric.h>

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

TEST_CASE("the serving KV record holds exactly what the serving roundings leave", "[kernels][quant]") {
  // 448 FP8 dims in 7 blocks of 64 with very different magnitudes, and 64 rope dims (fp32 or bf16).
  const bool rope_bf16 = GENERATE(false, true);
  const Fp8KvRow row{512, 64, rope_bf16};
  CHECK(row.bytes() == (rope_bf16 ? 584 : 712));
  std::vector<float> v(512);
  uint32_t seed = 7;
  for (int i = 0; i < 512; ++i) {
    seed = seed * 1664525u + 1013904223u;
    const float u = static_cast<float>(static_cast<int32_t>(seed >> 8) % 20001) / 10000.0f - 1.0f;
    v[i] = std::ldexp(u, (i / 64) * 3 - 9);
  }
  v[3] = -0.0f;
  v[70] = 0.0f;
  std::vector<float> want = v;
  fp8_round_trip(want.data(), 448, 64);
  for (int i = 448; i < 512 && rope_bf16; ++i) want[i] = bf16_to_f32(f32_to_bf16(want[i]));
  std::vector<uint8_t> record(static_cast<size_t>(row.bytes()), 0xAA);
  std::vector<float> got = v;
  fp8_kv_encode(row, got.data(), record.data());
  CHECK(std::memcmp(got.data(), want.data(), want.size() * 4) == 0);  // the rounding, -0 included
  std::vector<float> decoded(512);
  fp8_kv_decode(row, record.data(), decoded.data());
  CHECK(std::memcmp(decoded.data(), want.data(), want.size() * 4) == 0);
  for (int i = row.scales_offset() + 7; i < row.bytes(); ++i) CHECK(record[i] == 0);  // padding is zero
  // Encoding decoded values again changes none of them (what a typed rewrite of a blob relies on).
  std::vector<uint8_t> again(record.size());
  std::vector<float> redo = decoded;
  fp8_kv_encode(row, redo.data(), again.data());
  CHECK(std::memcmp(redo.data(), decoded.data(), decoded.size() * 4) == 0);
}

TEST_CASE("FP4 keys encode to the codes and scales the FP4 weight layout reads", "[kernels][quant]") {
  std::vector<float> v(128);
  uint32_t seed = 11;
  for (int i = 0; i < 128; ++i) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = std::ldexp(static_cast<float>(static_cast<int32_t>(seed >> 8) % 2001) / 1000.0f - 1.0f, (i / 32) * 2 - 3);
  }
  std::vector<float> want = v;
  fp4_round_trip(want.data(), 128, 32);
  std::vector<uint8_t> codes(64), scales(4);
  fp4_encode(v.data(), 128, codes.data(), scales.data());
  CHECK(std::memcmp(v.data(), want.data(), want.size() * 4) == 0);
  for (int i = 0; i < 128; ++i) {
    const uint8_t nibble = (i & 1) ? codes[i / 2] >> 4 : codes[i / 2] & 0xF;
    INFO("dim " << i);
    CHECK(e2m1_to_f32(nibble) * ue8m0_to_f32(scales[i / 32]) == want[i]);
  }
  std::vector<float> decoded(128);
  fp4_decode(codes.data(), scales.data(), 128, decoded.data());
  CHECK(std::memcmp(decoded.data(), want.data(), want.size() * 4) == 0);
}
