#pragma once
// The serving-precision roundings of the V4 KV (golden-tiny README, "Serving precision goldens"): FP8
// E4M3 and FP4 E2M1 round trips in blocks with power-of-two (UE8M0) scales. Storing the KV in that
// layout loses exactly what these round trips lose.
#include <cstdint>

namespace mnemo::kernels {

// ceil(log2(t)) for a positive normal fp32 t, exactly, from its bits.
int ceil_log2(float t);
// E4M3 round to nearest even of v, |v| <= 448 (3 mantissa bits, min normal 2^-6).
float round_e4m3(float v);
// E2M1 round to nearest even of v, |v| <= 6: {0, 0.5, 1, 1.5, 2, 3, 4, 6}.
float round_e2m1(float v);
// In place over n values, in blocks of `block`: scale 2^ceil(log2(amax / max_finite)), round, rescale.
void fp8_round_trip(float* v, int n, int block);
void fp4_round_trip(float* v, int n, int block);

// One KV row in the serving layout (spec section 3), one contiguous record: the first dim - rope_dim dims
// as FP8 E4M3 codes, then the rope_dim dims as fp32 (`rope_bf16`: as bf16), then one UE8M0 scale per 64
// FP8 dims, padded to a multiple of 8 bytes. For V4's 512-dim entries: 448 + 256 + 7 -> 712 bytes, or
// 448 + 128 + 7 -> 584 with bf16 rope dims (the official cache, whose activations are bf16).
struct Fp8KvRow {
  int dim = 0;
  int rope_dim = 0;
  bool rope_bf16 = false;
  int nope() const { return dim - rope_dim; }
  int rope_bytes() const { return rope_bf16 ? 2 : 4; }
  int scales_offset() const { return nope() + rope_bytes() * rope_dim; }
  int bytes() const { return (scales_offset() + (nope() + 63) / 64 + 7) / 8 * 8; }
};
// Rounds v (dim floats) as the serving path does (the FP8 blocks of fp8_round_trip(v, nope, 64); the rope
// dims to bf16 if the record keeps them so), leaving the rounded values in v, and writes them as a record
// of `row.bytes()` bytes.
void fp8_kv_encode(const Fp8KvRow& row, float* v, uint8_t* record);
// The record's values, exactly those the encoding left in v.
void fp8_kv_decode(const Fp8KvRow& row, const uint8_t* record, float* v);

// FP4 E2M1 vectors of n dims (a multiple of 32) in the layout of WeightType::kFP4E2M1Group32: n/2 code
// bytes (low nibble = even dim) and n/32 UE8M0 scales. Encoding rounds v as fp4_round_trip(v, n, 32).
void fp4_encode(float* v, int n, uint8_t* codes, uint8_t* scales);
void fp4_decode(const uint8_t* codes, const uint8_t* scales, int n, float* v);

}  // namespace mnemo::kernels
