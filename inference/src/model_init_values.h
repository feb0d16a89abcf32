#pragma once
// Synthetic weight values: golden-tiny's init recipe, generated per group of kInitGroupRows rows
// from a counter-seeded PRNG, so values depend on (seed, tensor name, row) only, never on threads
// or order.
#include <cstdint>

#include <mnemo/inference/model_config.h>
#include <mnemo/inference/model_tensors.h>

namespace mnemo::inference::init {

inline constexpr int64_t kInitGroupRows = 128;  // = the FP8 block height

struct Rule {
  enum Kind { kNormal, kOnePlusNormal, kUniform, kDistinctIds } kind = kNormal;
  float a = 0;  // std (normal), low (uniform)
  float b = 0;  // high (uniform); number of ids to choose from (distinct ids)
};

Rule rule_for(const TensorSpec& spec, const ModelConfig& config);

// Rows and columns of the logical (unpacked, unquantized) tensor: 1-D tensors are one column.
int64_t logical_rows(const TensorSpec& spec);
int64_t logical_cols(const TensorSpec& spec);

// Encodes row group `group` of `spec` into `out` (its bytes in the tensor) and, for FP8/FP4
// matrices, the matching scale bytes into `scale` (the whole scale tensor; only this group's part
// is written).
void encode_group(const TensorSpec& spec, const ModelConfig& config, uint64_t seed, int64_t group,
                  uint8_t* out, uint8_t* scale);

}  // namespace mnemo::inference::init
