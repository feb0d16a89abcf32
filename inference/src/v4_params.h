#pragma once
// The DeepSeek-V4 parameters as the forward pass reads them: matrices as views of the mapped
// checkpoint (dequantised in registers by the kernels), small vectors as fp32 copies.
#include <mnemo/kernels/weight_view.h>

#include <cstdint>
#include <vector>

namespace mnemo::inference::v4 {

using kernels::WeightView;

// Hyper-connection mixing parameters around one sublayer (or the head).
struct HcParams {
  std::vector<float> fn;  // [n_mix, hc * d]
  std::vector<float> base;
  std::vector<float> scale;
  int n_mix = 0;  // 24 around a sublayer (pre 4, post 4, comb 16), 4 for the head
};

struct CompressorParams {
  int ratio = 0;   // 4 (CSA, overlapping) or 128 (HCA)
  int width = 0;   // output dims D' (head_dim, or index_head_dim inside the indexer)
  WeightView wkv;  // [c * D', d], c = 2 when overlapping
  WeightView wgate;
  std::vector<float> ape;  // [ratio, c * D']
  std::vector<float> norm;     // [D']
  bool hadamard = false;       // the indexer's keys are rotated after RoPE
};

struct IndexerParams {
  WeightView wq_b;          // [HI * DI, q_lora]
  WeightView weights_proj;  // [HI, d]
  CompressorParams compressor;
};

struct AttentionParams {
  int ratio = 0;
  WeightView wq_a, wq_b, wkv, wo_a, wo_b;
  std::vector<float> q_norm, kv_norm;
  std::vector<float> sink;  // [H]
  CompressorParams compressor;
  IndexerParams indexer;
};

struct MoeParams {
  WeightView gate;                  // [E, d]
  std::vector<float> gate_bias;   // [E]; empty on hash layers
  std::vector<int32_t> tid2eid;   // [vocab, k] on hash layers; empty otherwise
  std::vector<WeightView> w1, w2, w3;  // routed experts
  WeightView shared_w1, shared_w2, shared_w3;
};

struct BlockParams {
  HcParams hc_attn, hc_ffn;
  std::vector<float> attn_norm, ffn_norm;
  AttentionParams attn;
  MoeParams moe;
};

struct MtpParams {
  WeightView e_proj, h_proj;
  std::vector<float> enorm, hnorm, norm;
  HcParams hc_head;
  BlockParams block;
};

struct ModelParams {
  WeightView embed;  // [vocab, d]
  WeightView head;   // [vocab, d]
  std::vector<float> norm;
  HcParams hc_head;
  std::vector<BlockParams> layers;
  std::vector<MtpParams> mtp;
};

}  // namespace mnemo::inference::v4
