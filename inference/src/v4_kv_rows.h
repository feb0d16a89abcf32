#pragma once
// How a layer stores its KV rows, by precision: fp32 rows for the reference precisions, and at
// `serving` the serving layout of spec section 3 (kv_quant.h): each kv row (window and compressed
// entries) as one record of FP8 E4M3 nope dims, bf16 rope dims and UE8M0 scales, each indexer key as
// FP4 E2M1 codes with a plane of UE8M0 scales. Storing a row rounds it exactly as the serving path
// rounds (the golden-tiny README's serving roundings, plus bf16 rope dims as the official cache keeps them).
#include <cstdint>

#include <mnemo/kernels/kv_quant.h>

#include "v4_dims.h"
#include "v4_state.h"

namespace mnemo::inference::v4 {

inline bool serving_layout(const Dims& dims) { return dims.numerics == Numerics::kServing; }
inline kernels::Fp8KvRow fp8_row(const Dims& dims) { return {dims.head_dim, dims.rope_dim}; }

// Empty rows of a layer's kinds.
KvRows kv_rows(const Dims& dims);
KvRows index_key_rows(const Dims& dims);
// A layer's empty state, its rows in the precision's layout.
LayerState layer_state(const Dims& dims);

// Rounds v (head_dim floats) as stored and writes it as one kv row at `record`.
void store_kv(const Dims& dims, float* v, uint8_t* record);
// Appends v (head_dim floats), rounded as stored, to kv rows.
void append_kv(const Dims& dims, float* v, KvRows& rows);
// Appends v (index_dim floats), rounded as stored, to the keys.
void append_index_key(const Dims& dims, float* v, KvRows& keys);
// A row's values as floats.
void load_kv(const Dims& dims, const uint8_t* record, float* v);
void load_index_key(const Dims& dims, const KvRows& keys, int64_t i, float* v);

}  // namespace mnemo::inference::v4
