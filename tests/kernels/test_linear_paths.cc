// Op test: every CPU path of the linear op (scalar fallback, AVX2 GEMV for few tokens, AVX2 GEMM over
// packed panels for many) against the scalar reference, and against each other bit for bit.
#include <mnemo/kernels/cpu_features.h>
#include <mnemo/kernels/linear.h>
#include <mnemo/kernels/numeric.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "../../kernels/cpu/linear_cpu.h"
#include "support/skip.h"

using namespace mnemo::kernels;

namespace {

uint32_t next(uint32_t& seed) { return seed = seed * 1664525u + 1013904223u; }

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(static_cast<int32_t>(next(seed) >> 8) % 2000) / 1000.0f - 0.3f;
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

// A weight of each format with random codes (no NaN codes) and scales; storage kept alive by the owner.
struct TestWeight {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  std::vector<uint8_t> codes, scales;
  std::vector<float> f32_scales;
  WeightView view;
};

TestWeight make_weight(WeightType type, int64_t rows, int64_t cols, uint32_t seed, bool f32_scale = false) {
  TestWeight t;
  t.view.type = type;
  t.view.rows = rows;
  t.view.cols = cols;
  switch (type) {
    case WeightType::kF32:
      t.f32 = random_floats(static_cast<size_t>(rows * cols), seed);
      t.view.data = t.f32.data();
      break;
    case WeightType::kBF16: {
      auto f = random_floats(static_cast<size_t>(rows * cols), seed);
      for (float v : f) t.bf16.push_back(f32_to_bf16(v));
      t.view.data = t.bf16.data();
      break;
    }
    case WeightType::kF8E4M3Block128: {
      t.codes.resize(static_cast<size_t>(rows * cols));
      for (auto& b : t.codes) {
        do b = static_cast<uint8_t>(next(seed) >> 24); while ((b & 0x7F) == 0x7F);
      }
      t.scales.resize(static_cast<size_t>(((rows + 127) / 128) * ((cols + 127) / 128)));
      break;
    }
    case WeightType::kFP4E2M1Group32:
      t.codes.resize(static_cast<size_t>(rows * cols / 2));
      for (auto& b : t.codes) b = static_cast<uint8_t>(next(seed) >> 24);
      t.scales.resize(static_cast<size_t>(rows * (cols / 32)));
      break;
  }
  if (!t.codes.empty()) {
    t.view.data = t.codes.data();
    for (auto& s : t.scales) s = static_cast<uint8_t>(118 + next(seed) % 12);
    t.view.scale_type = ScaleType::kUe8m0;
    t.view.scale = t.scales.data();
    if (f32_scale) {
      for (uint8_t s : t.scales) t.f32_scales.push_back(ue8m0_to_f32(s) * 1.375f);
      t.view.scale_type = ScaleType::kF32;
      t.view.scale = t.f32_scales.data();
    }
  }
  return t;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("every linear path matches the scalar reference for each weight format", "[kernels][linear]") {
  const WeightType types[] = {WeightType::kF32, WeightType::kBF16, WeightType::kF8E4M3Block128,
                              WeightType::kFP4E2M1Group32};
  for (WeightType type : types) {
    for (int64_t cols : {32, 96, 320, 1024}) {
      for (int64_t tokens : {1, 3, 8, 17, 40}) {
        const int64_t rows = 131;
        TestWeight w = make_weight(type, rows, cols, static_cast<uint32_t>(cols * 7 + tokens));
        auto x = random_floats(static_cast<size_t>(tokens * cols), static_cast<uint32_t>(tokens));
        std::vector<float> want(static_cast<size_t>(tokens * rows)), scalar(want.size());
        cpu::linear_reference(x.data(), tokens, w.view, want.data());
        cpu::linear_rows_scalar(x.data(), tokens, w.view, 0, rows, scalar.data());
        INFO("type " << static_cast<int>(type) << " cols " << cols << " tokens " << tokens);
        CHECK(nmse(scalar, want) < 1e-11);
        if (isa_supported(Isa::kAvx2)) {
          std::vector<float> avx2(want.size());
          cpu::linear_rows_avx2(x.data(), tokens, w.view, 0, rows, avx2.data());
          CHECK(nmse(avx2, want) < 1e-11);
        }
      }
    }
  }
}

TEST_CASE("AVX2 and scalar linear give identical bits for every format, shape and token count", "[kernels][linear]") {
  if (!isa_supported(Isa::kAvx2)) {
    mnemo::test::skip_test("this CPU (or build) has no AVX2+FMA+F16C: nothing to compare with the scalar kernels");
    return;
  }
  struct Case {
    WeightType type;
    int64_t rows, cols;
    bool f32_scale;
  };
  const Case cases[] = {{WeightType::kF32, 37, 1, false},    {WeightType::kF32, 37, 13, false},
                        {WeightType::kF32, 37, 200, false},  {WeightType::kBF16, 41, 7, false},
                        {WeightType::kBF16, 41, 129, false}, {WeightType::kBF16, 130, 1000, false},
                        {WeightType::kF8E4M3Block128, 200, 300, false},
                        {WeightType::kF8E4M3Block128, 129, 256, true},
                        {WeightType::kFP4E2M1Group32, 70, 64, false},
                        {WeightType::kFP4E2M1Group32, 33, 416, true}};
  for (const Case& c : cases) {
    TestWeight w = make_weight(c.type, c.rows, c.cols, 99, c.f32_scale);
    for (int64_t tokens : {1, 2, 3, 4, 5, 9, 15, 16, 17, 33}) {
      auto x = random_floats(static_cast<size_t>(tokens * c.cols), static_cast<uint32_t>(5 + tokens));
      std::vector<float> scalar(static_cast<size_t>(tokens * c.rows)), avx2(scalar.size());
      cpu::linear_rows_scalar(x.data(), tokens, w.view, 0, c.rows, scalar.data());
      cpu::linear_rows_avx2(x.data(), tokens, w.view, 0, c.rows, avx2.data());
      INFO("type " << static_cast<int>(c.type) << " " << c.rows << "x" << c.cols << " tokens " << tokens);
      CHECK(same_bits(scalar, avx2));
      // A row range that starts mid-tile, as a thread's share does.
      std::vector<float> part = avx2;
      std::fill(part.begin(), part.end(), 0.0f);
      cpu::linear_rows_avx2(x.data(), tokens, w.view, 5, c.rows, part.data());
      cpu::linear_rows_avx2(x.data(), tokens, w.view, 0, 5, part.data());
      CHECK(same_bits(part, avx2));
    }
  }
}

TEST_CASE("a token's row of a GEMM over packed panels equals its GEMV alone", "[kernels][linear]") {
  // 40 tokens take the packed GEMM path, one token the register GEMV: the bits must agree.
  const int64_t rows = 300, cols = 512, tokens = 40;
  for (WeightType type : {WeightType::kBF16, WeightType::kF8E4M3Block128, WeightType::kFP4E2M1Group32}) {
    TestWeight w = make_weight(type, rows, cols, 3);
    auto x = random_floats(static_cast<size_t>(tokens * cols), 8);
    std::vector<float> batched(static_cast<size_t>(tokens * rows));
    REQUIRE(linear(x.data(), tokens, w.view, batched.data()));
    for (int64_t t : {int64_t{0}, int64_t{17}, tokens - 1}) {
      std::vector<float> alone(static_cast<size_t>(rows));
      REQUIRE(linear(x.data() + t * cols, 1, w.view, alone.data()));
      CHECK(std::memcmp(alone.data(), batched.data() + t * rows, sizeof(float) * rows) == 0);
    }
  }
}

TEST_CASE("the kernel path is chosen once and named", "[kernels][isa]") {
  const Isa isa = active_isa();
  CHECK(isa_supported(isa));
  CHECK(!isa_name(isa).empty());
  // The best path this CPU and build support, unless MNEMO_ISA=scalar forced the fallback.
  const char* env = std::getenv("MNEMO_ISA");
  const bool forced = env && std::string_view(env) == "scalar";
  CHECK(isa == (!forced && isa_supported(Isa::kAvx2) ? Isa::kAvx2 : Isa::kScalar));
  // Chosen once: a later change of the environment does not switch kernels under a running model.
  const std::string saved = env ? env : "";
  ::setenv("MNEMO_ISA", forced ? "auto" : "scalar", 1);
  CHECK(active_isa() == isa);
  if (env) ::setenv("MNEMO_ISA", saved.c_str(), 1);
  else ::unsetenv("MNEMO_ISA");
}
