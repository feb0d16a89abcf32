#pragma once
// The sizes and constants of a DeepSeek-V4 model that the forward pass uses, taken from its config.
#include <vector>

namespace mnemo::inference::v4 {

// How the forward pass rounds: plain fp32, bf16 activations, or fp32 activations with the serving KV
// layout's roundings (FP8 KV with power-of-two scales, FP4 indexer query and keys).
enum class Numerics { kF32, kBf16, kServing };

struct Dims {
  int vocab = 0;
  int d = 0;           // hidden_size
  int n_layers = 0;    // main blocks (the MTP blocks come after)
  int n_heads = 0;
  int head_dim = 0;
  int rope_dim = 0;    // the last rope_dim dims of each head carry RoPE
  int q_lora = 0;
  int o_groups = 0;
  int o_lora = 0;
  int window = 0;      // sliding_window
  std::vector<int> ratios;  // per block, main then MTP
  int index_heads = 0, index_dim = 0, index_topk = 0;
  int n_experts = 0, n_active = 0, moe_inter = 0, n_hash_layers = 0;
  float route_scale = 1.0f, swiglu_limit = 0.0f;
  int hc = 0, sinkhorn_iters = 0;
  float hc_eps = 0.0f, norm_eps = 0.0f;
  double rope_theta = 0, compress_theta = 0;
  double yarn_factor = 1, yarn_beta_fast = 32, yarn_beta_slow = 1;
  double yarn_original_max = 0;
  int n_mtp = 0;
  Numerics numerics = Numerics::kF32;
};

}  // namespace mnemo::inference::v4
