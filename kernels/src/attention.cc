#include <mnemo/kernels/attention.h>
#include <mnemo/kernels/cpu_features.h>

#include "cpu/attention_cpu.h"

namespace mnemo::kernels {

Status attend_mqa(const float* q, int n_heads, int dim, const float* const* keys, int64_t n_keys, const float* sink,
                  float scale, float* out) {
  if (n_heads <= 0 || dim <= 0 || n_keys < 0 || !q || !out || !sink || (n_keys > 0 && !keys)) {
    return Status::invalid_argument("attend_mqa: bad shapes or null buffers");
  }
#if MNEMO_HAVE_AVX2
  if (active_isa() != Isa::kScalar) {
    cpu::attend_mqa_avx2(q, n_heads, dim, keys, n_keys, sink, scale, out);
    return Status::ok();
  }
#endif
  cpu::attend_mqa_scalar(q, n_heads, dim, keys, n_keys, sink, scale, out);
  return Status::ok();
}

Status attend_mqa_fp8(const float* q, int n_heads, const Fp8KvRow& row, const uint8_t* const* keys, int64_t n_keys,
                      const float* sink, float scale, float* out) {
  if (n_heads <= 0 || row.dim <= 0 || row.rope_dim < 0 || row.rope_dim > row.dim || n_keys < 0 || !q || !out ||
      !sink || (n_keys > 0 && !keys)) {
    return Status::invalid_argument("attend_mqa_fp8: bad shapes or null buffers");
  }
#if MNEMO_HAVE_AVX2
  if (active_isa() != Isa::kScalar && row.dim % 16 == 0 && row.nope() % 8 == 0) {
    cpu::attend_mqa_fp8_avx2(q, n_heads, row, keys, n_keys, sink, scale, out);
    return Status::ok();
  }
#endif
  cpu::attend_mqa_fp8_scalar(q, n_heads, row, keys, n_keys, sink, scale, out);
  return Status::ok();
}

}  // namespace mnemo::kernels
