#include "v4_kv_rows.h"

#include <cstring>

namespace mnemo::inference::v4 {

KvRows kv_rows(const Dims& dims) {
  KvRows r;
  r.row_bytes = serving_layout(dims) ? fp8_row(dims).bytes() : int64_t{dims.head_dim} * 4;
  return r;
}

KvRows index_key_rows(const Dims& dims) {
  KvRows r;
  if (serving_layout(dims)) {
    r.row_bytes = dims.index_dim / 2;
    r.scale_bytes = dims.index_dim / 32;
  } else {
    r.row_bytes = int64_t{dims.index_dim} * 4;
  }
  return r;
}

LayerState layer_state(const Dims& dims) {
  LayerState s;
  s.ring = kv_rows(dims);
  s.entries = kv_rows(dims);
  s.index_keys = index_key_rows(dims);
  return s;
}

void store_kv(const Dims& dims, float* v, uint8_t* record) {
  if (serving_layout(dims)) {
    kernels::fp8_kv_encode(fp8_row(dims), v, record);
  } else {
    std::memcpy(record, v, static_cast<size_t>(dims.head_dim) * 4);
  }
}

void append_kv(const Dims& dims, float* v, KvRows& rows) {
  const size_t at = rows.data.size();
  rows.data.resize(at + static_cast<size_t>(rows.row_bytes));
  store_kv(dims, v, rows.data.data() + at);
}

void append_index_key(const Dims& dims, float* v, KvRows& keys) {
  const size_t at = keys.data.size();
  keys.data.resize(at + static_cast<size_t>(keys.row_bytes));
  if (serving_layout(dims)) {
    const size_t s_at = keys.scales.size();
    keys.scales.resize(s_at + static_cast<size_t>(keys.scale_bytes));
    kernels::fp4_encode(v, dims.index_dim, keys.data.data() + at, keys.scales.data() + s_at);
  } else {
    std::memcpy(keys.data.data() + at, v, static_cast<size_t>(dims.index_dim) * 4);
  }
}

void load_kv(const Dims& dims, const uint8_t* record, float* v) {
  if (serving_layout(dims)) {
    kernels::fp8_kv_decode(fp8_row(dims), record, v);
  } else {
    std::memcpy(v, record, static_cast<size_t>(dims.head_dim) * 4);
  }
}

void load_index_key(const Dims& dims, const KvRows& keys, int64_t i, float* v) {
  if (serving_layout(dims)) {
    kernels::fp4_decode(keys.row(i), keys.scale(i), dims.index_dim, v);
  } else {
    std::memcpy(v, keys.row(i), static_cast<size_t>(dims.index_dim) * 4);
  }
}

}  // namespace mnemo::inference::v4
