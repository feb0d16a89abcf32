#pragma once
// The tensors a DeepSeek-V4 checkpoint of a given config holds (official names, spec section 1),
// their parameter counts, the check of a loaded checkpoint against them, and the KV-cache
// footprint.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/inference/dtype.h>
#include <mnemo/inference/model_config.h>

namespace mnemo::inference {

class Weights;

// kBf16: every matrix BF16 (golden-tiny). kFp8: the official release layout: FP8 E4M3 matrices with
// 128x128-block UE8M0 scales, routed experts FP4 E2M1 (packed I8) with 32-wide UE8M0 scales.
enum class WeightFormat { kBf16, kFp8 };
std::string_view weight_format_name(WeightFormat format);  // "bf16", "fp8"

// How a matrix is stored; scales are their own TensorSpec right after the matrix.
enum class Storage { kPlain, kFp8Block, kFp4Packed, kScale };

inline constexpr int64_t kFp8BlockSize = 128;
inline constexpr int64_t kFp4BlockSize = 32;

struct TensorSpec {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  Storage storage = Storage::kPlain;
  // Logical parameters: an FP4 matrix counts both nibbles of a byte, a scale counts none.
  int64_t params = 0;
  // Block index (main layers 0.., MTP layers after them), -1 outside the blocks.
  int64_t layer = -1;
  // Routed-expert id, -1 for everything else.
  int64_t expert = -1;
};

// Every tensor of the checkpoint, in a fixed order (embed, layers, MTP, final norm/hc head, head),
// each scale right after its matrix.
std::vector<TensorSpec> expected_tensors(const ModelConfig& config, WeightFormat format);

// The format of a loaded checkpoint, from the dtype of layers.0.attn.wq_a.weight.
Result<WeightFormat> detect_weight_format(const Weights& weights);

// Every expected tensor exists with its dtype (FP8 block scales may be F8_E8M0 or F32, packed FP4
// I8 or U8) and shape, and no unexpected tensor is present; the error names the first offending
// tensor.
Status validate(const Weights& weights, const ModelConfig& config, WeightFormat format);
// As above with the format detected from the weights.
Status validate(const Weights& weights, const ModelConfig& config);

// The published figures (Flash 284B / 13B) count the main model; the MTP layers come on top.
struct ParamCounts {
  int64_t total = 0;
  // What one token's computation reads: one embedding row, and no non-selected routed expert.
  int64_t active = 0;
  // The MTP layers (shared embedding and head not counted again).
  int64_t mtp_total = 0;
  int64_t mtp_active = 0;
  int64_t bytes = 0;  // checkpoint size of the data (all tensors, scales included)
};
ParamCounts count_params(const ModelConfig& config, WeightFormat format);

// KV-cache footprint of one sequence for one layer kind (spec section 3).
struct KvKindFigures {
  LayerKind kind = LayerKind::kWindow;
  int64_t layers = 0;
  // Append-only state per token (compressed entries and indexer keys), summed over the layers.
  double bf16_bytes_per_token = 0;
  double serving_bytes_per_token = 0;
  // The same at `context` tokens (whole entries only).
  int64_t bf16_bytes_at_context = 0;
  int64_t serving_bytes_at_context = 0;
  // Fixed per sequence: the window ring (sliding_window raw entries per layer) and the compressor's
  // fp32 carry, summed over the layers.
  int64_t bf16_ring_bytes = 0;
  int64_t serving_ring_bytes = 0;
  int64_t carry_bytes = 0;
};

struct KvFigures {
  int64_t context = 0;
  std::vector<KvKindFigures> kinds;  // main layers: window, csa, hca
  KvKindFigures mtp;                 // the MTP layers (window only), not in the totals
  double bf16_bytes_per_token = 0;
  double serving_bytes_per_token = 0;
  int64_t bf16_bytes_at_context = 0;  // append-only state plus the fixed per-sequence state
  int64_t serving_bytes_at_context = 0;
};

// Bytes of one 512-dim (head_dim) KV entry in the serving layout: FP8 nope dims + one UE8M0 scale
// per 64 (padded to 8 bytes) + bf16 rope dims; and of one FP4 indexer key with a UE8M0 scale per 32
// dims.
int64_t serving_kv_entry_bytes(const ModelConfig& config);
int64_t serving_indexer_key_bytes(const ModelConfig& config);
KvFigures kv_figures(const ModelConfig& config, int64_t context);

}  // namespace mnemo::inference
