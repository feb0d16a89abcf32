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

}  // namespace mnemo::kernels
