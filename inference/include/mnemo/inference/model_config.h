#pragma once
// The DeepSeek-V4 configuration (HF config.json, model_type deepseek_v4): the keys of spec section
// 1, checked for consistency. Unknown keys are accepted and ignored.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>

namespace mnemo::inference {

// What a layer's attention keeps beyond its raw window; decided only by compress_ratios.
enum class LayerKind { kWindow, kCsa, kHca };
inline constexpr int kCsaRatio = 4;
inline constexpr int kHcaRatio = 128;

std::string_view layer_kind_name(LayerKind kind);  // "window", "csa", "hca"

struct RopeScaling {
  std::string type = "yarn";
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32;
  double beta_slow = 1;
};

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 1;
  int64_t head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t q_lora_rank = 0;
  int64_t o_groups = 0;
  int64_t o_lora_rank = 0;
  int64_t sliding_window = 0;
  // One per main layer, then one per MTP layer: 0 (window only), 4 (CSA) or 128 (HCA).
  std::vector<int> compress_ratios;
  int64_t index_n_heads = 0;
  int64_t index_head_dim = 0;
  int64_t index_topk = 0;
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t num_hash_layers = 0;
  std::string scoring_func;
  double routed_scaling_factor = 1.0;
  bool norm_topk_prob = true;
  double swiglu_limit = 0;
  int64_t hc_mult = 0;
  int64_t hc_sinkhorn_iters = 0;
  double hc_eps = 0;
  double rope_theta = 0;
  double compress_rope_theta = 0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 0;
  int64_t max_position_embeddings = 0;
  int64_t num_nextn_predict_layers = 0;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 1;

  // Layer i < num_hidden_layers is a main layer; the following num_nextn_predict_layers are MTP.
  LayerKind layer_kind(int64_t layer) const;
  int compress_ratio(int64_t layer) const { return compress_ratios[static_cast<size_t>(layer)]; }
  int64_t num_layers_of(LayerKind kind) const;  // main layers only
  bool is_hash_layer(int64_t layer) const { return layer < num_hash_layers; }
  int64_t nope_head_dim() const { return head_dim - qk_rope_head_dim; }

  // Every consistency rule; the error names the key.
  Status validate() const;
  // config.json text, with exactly the keys this struct holds (plus model_type and architectures).
  std::string to_json() const;
};

// Parses and validates config.json text; `where` (the file name) prefixes errors.
Result<ModelConfig> parse_model_config(std::string_view json, std::string_view where);
Result<ModelConfig> load_model_config(const std::string& path);

}  // namespace mnemo::inference
