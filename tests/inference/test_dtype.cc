#include <mnemo/inference/dtype.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

using namespace mnemo::inference;

namespace {

const float kNaN = std::nanf("");

// E4M3 "fn" codes 0x00..0x7F, written out from the OCP FP8 table (bias 7, 3 mantissa bits, 0x7F NaN).
const float kE4M3Positive[128] = {
    0.0f, 0.001953125f, 0.00390625f, 0.005859375f, 0.0078125f, 0.009765625f, 0.01171875f, 0.013671875f,
    0.015625f, 0.017578125f, 0.01953125f, 0.021484375f, 0.0234375f, 0.025390625f, 0.02734375f, 0.029296875f,
    0.03125f, 0.03515625f, 0.0390625f, 0.04296875f, 0.046875f, 0.05078125f, 0.0546875f, 0.05859375f,
    0.0625f, 0.0703125f, 0.078125f, 0.0859375f, 0.09375f, 0.1015625f, 0.109375f, 0.1171875f,
    0.125f, 0.140625f, 0.15625f, 0.171875f, 0.1875f, 0.203125f, 0.21875f, 0.234375f,
    0.25f, 0.28125f, 0.3125f, 0.34375f, 0.375f, 0.40625f, 0.4375f, 0.46875f,
    0.5f, 0.5625f, 0.625f, 0.6875f, 0.75f, 0.8125f, 0.875f, 0.9375f,
    1.0f, 1.125f, 1.25f, 1.375f, 1.5f, 1.625f, 1.75f, 1.875f,
    2.0f, 2.25f, 2.5f, 2.75f, 3.0f, 3.25f, 3.5f, 3.75f,
    4.0f, 4.5f, 5.0f, 5.5f, 6.0f, 6.5f, 7.0f, 7.5f,
    8.0f, 9.0f, 10.0f, 11.0f, 12.0f, 13.0f, 14.0f, 15.0f,
    16.0f, 18.0f, 20.0f, 22.0f, 24.0f, 26.0f, 28.0f, 30.0f,
    32.0f, 36.0f, 40.0f, 44.0f, 48.0f, 52.0f, 56.0f, 60.0f,
    64.0f, 72.0f, 80.0f, 88.0f, 96.0f, 104.0f, 112.0f, 120.0f,
    128.0f, 144.0f, 160.0f, 176.0f, 192.0f, 208.0f, 224.0f, 240.0f,
    256.0f, 288.0f, 320.0f, 352.0f, 384.0f, 416.0f, 448.0f, kNaN,
};

// FP4 E2M1 codes 0..7 (bit 3 is the sign).
const float kE2M1Positive[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

// UE8M0 codes 0x00..0xFE: 2^(code-127); 0xFF is NaN.
const float kUe8m0[255] = {
    0x1p-127f, 0x1p-126f, 0x1p-125f, 0x1p-124f, 0x1p-123f, 0x1p-122f, 0x1p-121f, 0x1p-120f,
    0x1p-119f, 0x1p-118f, 0x1p-117f, 0x1p-116f, 0x1p-115f, 0x1p-114f, 0x1p-113f, 0x1p-112f,
    0x1p-111f, 0x1p-110f, 0x1p-109f, 0x1p-108f, 0x1p-107f, 0x1p-106f, 0x1p-105f, 0x1p-104f,
    0x1p-103f, 0x1p-102f, 0x1p-101f, 0x1p-100f, 0x1p-99f, 0x1p-98f, 0x1p-97f, 0x1p-96f,
    0x1p-95f, 0x1p-94f, 0x1p-93f, 0x1p-92f, 0x1p-91f, 0x1p-90f, 0x1p-89f, 0x1p-88f,
    0x1p-87f, 0x1p-86f, 0x1p-85f, 0x1p-84f, 0x1p-83f, 0x1p-82f, 0x1p-81f, 0x1p-80f,
    0x1p-79f, 0x1p-78f, 0x1p-77f, 0x1p-76f, 0x1p-75f, 0x1p-74f, 0x1p-73f, 0x1p-72f,
    0x1p-71f, 0x1p-70f, 0x1p-69f, 0x1p-68f, 0x1p-67f, 0x1p-66f, 0x1p-65f, 0x1p-64f,
    0x1p-63f, 0x1p-62f, 0x1p-61f, 0x1p-60f, 0x1p-59f, 0x1p-58f, 0x1p-57f, 0x1p-56f,
    0x1p-55f, 0x1p-54f, 0x1p-53f, 0x1p-52f, 0x1p-51f, 0x1p-50f, 0x1p-49f, 0x1p-48f,
    0x1p-47f, 0x1p-46f, 0x1p-45f, 0x1p-44f, 0x1p-43f, 0x1p-42f, 0x1p-41f, 0x1p-40f,
    0x1p-39f, 0x1p-38f, 0x1p-37f, 0x1p-36f, 0x1p-35f, 0x1p-34f, 0x1p-33f, 0x1p-32f,
    0x1p-31f, 0x1p-30f, 0x1p-29f, 0x1p-28f, 0x1p-27f, 0x1p-26f, 0x1p-25f, 0x1p-24f,
    0x1p-23f, 0x1p-22f, 0x1p-21f, 0x1p-20f, 0x1p-19f, 0x1p-18f, 0x1p-17f, 0x1p-16f,
    0x1p-15f, 0x1p-14f, 0x1p-13f, 0x1p-12f, 0x1p-11f, 0x1p-10f, 0x1p-9f, 0x1p-8f,
    0x1p-7f, 0x1p-6f, 0x1p-5f, 0x1p-4f, 0x1p-3f, 0x1p-2f, 0x1p-1f, 0x1p+0f,
    0x1p+1f, 0x1p+2f, 0x1p+3f, 0x1p+4f, 0x1p+5f, 0x1p+6f, 0x1p+7f, 0x1p+8f,
    0x1p+9f, 0x1p+10f, 0x1p+11f, 0x1p+12f, 0x1p+13f, 0x1p+14f, 0x1p+15f, 0x1p+16f,
    0x1p+17f, 0x1p+18f, 0x1p+19f, 0x1p+20f, 0x1p+21f, 0x1p+22f, 0x1p+23f, 0x1p+24f,
    0x1p+25f, 0x1p+26f, 0x1p+27f, 0x1p+28f, 0x1p+29f, 0x1p+30f, 0x1p+31f, 0x1p+32f,
    0x1p+33f, 0x1p+34f, 0x1p+35f, 0x1p+36f, 0x1p+37f, 0x1p+38f, 0x1p+39f, 0x1p+40f,
    0x1p+41f, 0x1p+42f, 0x1p+43f, 0x1p+44f, 0x1p+45f, 0x1p+46f, 0x1p+47f, 0x1p+48f,
    0x1p+49f, 0x1p+50f, 0x1p+51f, 0x1p+52f, 0x1p+53f, 0x1p+54f, 0x1p+55f, 0x1p+56f,
    0x1p+57f, 0x1p+58f, 0x1p+59f, 0x1p+60f, 0x1p+61f, 0x1p+62f, 0x1p+63f, 0x1p+64f,
    0x1p+65f, 0x1p+66f, 0x1p+67f, 0x1p+68f, 0x1p+69f, 0x1p+70f, 0x1p+71f, 0x1p+72f,
    0x1p+73f, 0x1p+74f, 0x1p+75f, 0x1p+76f, 0x1p+77f, 0x1p+78f, 0x1p+79f, 0x1p+80f,
    0x1p+81f, 0x1p+82f, 0x1p+83f, 0x1p+84f, 0x1p+85f, 0x1p+86f, 0x1p+87f, 0x1p+88f,
    0x1p+89f, 0x1p+90f, 0x1p+91f, 0x1p+92f, 0x1p+93f, 0x1p+94f, 0x1p+95f, 0x1p+96f,
    0x1p+97f, 0x1p+98f, 0x1p+99f, 0x1p+100f, 0x1p+101f, 0x1p+102f, 0x1p+103f, 0x1p+104f,
    0x1p+105f, 0x1p+106f, 0x1p+107f, 0x1p+108f, 0x1p+109f, 0x1p+110f, 0x1p+111f, 0x1p+112f,
    0x1p+113f, 0x1p+114f, 0x1p+115f, 0x1p+116f, 0x1p+117f, 0x1p+118f, 0x1p+119f, 0x1p+120f,
    0x1p+121f, 0x1p+122f, 0x1p+123f, 0x1p+124f, 0x1p+125f, 0x1p+126f, 0x1p+127f,
};

bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b)); }

}  // namespace

TEST_CASE("every E4M3 code decodes to the OCP table value, negatives mirrored", "[dtype]") {
  for (int code = 0; code < 256; ++code) {
    float want = kE4M3Positive[code & 0x7F];
    if (code & 0x80) want = -want;
    INFO("code " << code);
    CHECK(same(e4m3_to_f32(static_cast<uint8_t>(code)), want));
  }
}

TEST_CASE("every finite E4M3 value encodes back to its own code", "[dtype]") {
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7F) == 0x7F) continue;
    INFO("code " << code);
    CHECK(f32_to_e4m3(e4m3_to_f32(static_cast<uint8_t>(code))) == code);
  }
}

TEST_CASE("f32 to E4M3 rounds to nearest even and saturates at 448", "[dtype]") {
  CHECK(e4m3_to_f32(f32_to_e4m3(1.0625f)) == 1.0f);     // tie between 1 and 1.125: even mantissa
  CHECK(e4m3_to_f32(f32_to_e4m3(1.1875f)) == 1.25f);    // tie between 1.125 and 1.25
  CHECK(e4m3_to_f32(f32_to_e4m3(0.0009765625f)) == 0);  // half the smallest subnormal
  CHECK(e4m3_to_f32(f32_to_e4m3(0.0029296875f)) == 0.00390625f);
  CHECK(e4m3_to_f32(f32_to_e4m3(0.01513671875f)) == 0.015625f);  // subnormal rounds up into the normals
  CHECK(e4m3_to_f32(f32_to_e4m3(1000.0f)) == 448.0f);
  CHECK(e4m3_to_f32(f32_to_e4m3(-464.0f)) == -448.0f);
  CHECK(e4m3_to_f32(f32_to_e4m3(-3.3f)) == -3.25f);
  CHECK(f32_to_e4m3(kNaN) == 0x7F);
}

TEST_CASE("every E2M1 nibble decodes to the FP4 table value", "[dtype]") {
  for (int code = 0; code < 16; ++code) {
    float want = kE2M1Positive[code & 7];
    if (code & 8) want = -want;
    INFO("nibble " << code);
    CHECK(same(e2m1_to_f32(static_cast<uint8_t>(code)), want));
    CHECK(f32_to_e2m1(want) == code);
  }
}

TEST_CASE("f32 to E2M1 rounds ties to the even mantissa as the serving path does", "[dtype]") {
  const std::pair<float, float> cases[] = {{0.25f, 0.0f}, {0.75f, 1.0f}, {1.25f, 1.0f}, {1.75f, 2.0f},
                                           {2.5f, 2.0f},  {3.5f, 4.0f},  {5.0f, 4.0f},  {5.5f, 6.0f},
                                           {7.0f, 6.0f},  {-2.6f, -3.0f}, {0.3f, 0.5f}};
  for (auto [in, want] : cases) {
    INFO("value " << in);
    CHECK(e2m1_to_f32(f32_to_e2m1(in)) == want);
  }
}

TEST_CASE("every UE8M0 code decodes to its power of two, 0xFF to NaN", "[dtype]") {
  for (int code = 0; code < 255; ++code) {
    INFO("code " << code);
    CHECK(ue8m0_to_f32(static_cast<uint8_t>(code)) == kUe8m0[code]);
  }
  CHECK(std::isnan(ue8m0_to_f32(0xFF)));
  CHECK(ue8m0_from_exponent(0) == 127);
  CHECK(ue8m0_to_f32(ue8m0_from_exponent(-9)) == 0x1p-9f);
}

TEST_CASE("bf16 conversion rounds to nearest even and keeps NaN and infinities", "[dtype]") {
  CHECK(f32_to_bf16(1.0f) == 0x3F80);
  CHECK(bf16_to_f32(0x3F80) == 1.0f);
  CHECK(bf16_to_f32(0xC000) == -2.0f);
  CHECK(f32_to_bf16(bits_to_f32(0x3F808000u)) == 0x3F80);  // tie, even stays
  CHECK(f32_to_bf16(bits_to_f32(0x3F818000u)) == 0x3F82);  // tie, odd rounds up
  CHECK(f32_to_bf16(bits_to_f32(0x3F808001u)) == 0x3F81);
  CHECK(f32_to_bf16(bits_to_f32(0x7F7FFFFFu)) == 0x7F80);  // max float rounds to infinity
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(kNaN))));
  CHECK(std::isinf(bf16_to_f32(f32_to_bf16(INFINITY))));
  for (uint32_t v = 0; v < 0x10000; v += 7) {
    float f = bf16_to_f32(static_cast<uint16_t>(v));
    if (!std::isnan(f)) CHECK(f32_to_bf16(f) == v);
  }
}

TEST_CASE("f16 decodes normals, subnormals, infinities and NaN", "[dtype]") {
  CHECK(f16_to_f32(0x3C00) == 1.0f);
  CHECK(f16_to_f32(0xC000) == -2.0f);
  CHECK(f16_to_f32(0x7BFF) == 65504.0f);
  CHECK(f16_to_f32(0x0001) == 0x1p-24f);
  CHECK(f16_to_f32(0x0400) == 0x1p-14f);
  CHECK(std::isinf(f16_to_f32(0x7C00)));
  CHECK(std::isnan(f16_to_f32(0x7E00)));
  CHECK(same(f16_to_f32(0x8000), -0.0f));
  CHECK(e5m2_to_f32(0x3C) == 1.0f);
}

TEST_CASE("dtype names round-trip and sizes match safetensors", "[dtype]") {
  for (int i = 0; i < kDTypeCount; ++i) {
    auto d = static_cast<DType>(i);
    CHECK(dtype_from_name(dtype_name(d)) == d);
  }
  CHECK(dtype_from_name("F8_E4M3") == DType::kF8E4M3);
  CHECK(dtype_from_name("F8_E8M0") == DType::kF8E8M0);
  CHECK(!dtype_from_name("bf16"));
  CHECK(dtype_size(DType::kBF16) == 2);
  CHECK(dtype_size(DType::kI64) == 8);
  CHECK(dtype_size(DType::kF8E4M3) == 1);
  DTypeSet scales{DType::kF8E8M0, DType::kF32};
  CHECK(scales.contains(DType::kF32));
  CHECK(!scales.contains(DType::kBF16));
  CHECK(scales.to_string() == "F32|F8_E8M0");
}
