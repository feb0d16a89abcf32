// The bytes a decode step reads (what `mnemo bench decode` divides by the bandwidth), counted by the
// kernels from the routing the step took, against a hand count from golden-tiny's config.
#include <mnemo/inference/model.h>
#include <mnemo/kernels/traffic.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "support/tiny_model.h"

using mnemo::inference::Model;
using mnemo::inference::ModelConfig;
using mnemo::inference::Sequence;
using mnemo::inference::SequenceChunk;
using mnemo::inference::TokenId;

namespace {

// Weight bytes of one decode step with `experts[l]` distinct routed experts in layer l (bf16 matrices,
// f32 hyper-connection mixers), plus `rows` embedding rows.
int64_t hand_weight_bytes(const ModelConfig& c, const std::vector<int64_t>& experts, int64_t rows) {
  const int64_t d = c.hidden_size, H = c.num_attention_heads, hd = c.head_dim, q = c.q_lora_rank;
  const int64_t G = c.o_groups, R = c.o_lora_rank, HI = c.index_n_heads, DI = c.index_head_dim;
  const int64_t E = c.n_routed_experts, I = c.moe_intermediate_size, hc = c.hc_mult;
  const int64_t bf16 = 2, f32 = 4;
  int64_t total = rows * d * bf16 + c.vocab_size * d * bf16 + hc * hc * d * f32;  // embedding rows, head, hc head
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    int64_t layer = 2 * (2 * hc + hc * hc) * hc * d * f32;                         // hc mixers around both sublayers
    layer += (q * d + H * hd * q + hd * d + G * R * (H * hd / G) + d * G * R) * bf16;  // wq_a, wq_b, wkv, wo_a, wo_b
    const int ratio = c.compress_ratio(l);
    if (ratio == 4) {
      layer += (HI * DI * q + HI * d + 2 * (2 * DI) * d) * bf16;  // indexer wq_b, weights_proj, its compressor
      layer += 2 * (2 * hd) * d * bf16;                            // overlapping compressor wkv, wgate
    } else if (ratio == 128) {
      layer += 2 * hd * d * bf16;
    }
    layer += E * d * bf16 + (experts[l] + c.n_shared_experts) * 3 * I * d * bf16;  // gate, experts
    total += layer;
  }
  return total;
}

// KV bytes one decode row at position t attends or scores (KV held in fp32).
int64_t hand_kv_bytes(const ModelConfig& c, int64_t t) {
  int64_t total = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    int64_t entries = std::min<int64_t>(t + 1, c.sliding_window);
    const int ratio = c.compress_ratio(l);
    if (ratio == 128) entries += (t + 1) / 128;
    if (ratio == 4) {
      entries += std::min<int64_t>(c.index_topk, (t + 1) / 4);
      total += (t + 1) / 4 * c.index_head_dim * 4;  // every completed block's indexer key is scored
    }
    total += entries * c.head_dim * 4;
  }
  return total;
}

}  // namespace

TEST_CASE("a decode step's bytes read match a hand count from the config and the routing", "[v4][traffic]") {
  const Model& m = mnemo::test::tiny_model();
  const ModelConfig& c = m.config();
  auto all = mnemo::test::tiny_tokens("sequence_337");
  const int64_t V = c.vocab_size;

  // One sequence: every layer runs exactly num_experts_per_tok distinct experts.
  Sequence seq = m.new_sequence();
  std::vector<float> logits(200 * V);
  REQUIRE(m.forward(seq, std::span<const TokenId>(all.data(), 200), logits));
  mnemo::kernels::traffic_start();
  REQUIRE(m.forward(seq, std::span<const TokenId>(&all[200], 1), std::span<float>(logits.data(), V)));
  auto one = mnemo::kernels::traffic_stop();
  std::vector<int64_t> k_experts(static_cast<size_t>(c.num_hidden_layers), c.num_experts_per_tok);
  CHECK(one.weight_bytes == hand_weight_bytes(c, k_experts, 1));
  CHECK(one.kv_bytes == hand_kv_bytes(c, 200));

  // Three sequences in one step: each expert of the union is read once, so the bytes lie between k and 3k
  // experts a layer and exceed the one-row count by whole experts.
  std::vector<Sequence> seqs;
  for (int s = 0; s < 3; ++s) {
    seqs.push_back(m.new_sequence());
    REQUIRE(m.forward(seqs.back(), std::span<const TokenId>(all.data() + 10 * s, 50 + 20 * s), logits));
  }
  TokenId toks[3] = {all[300], all[301], all[302]};
  std::vector<SequenceChunk> chunks;
  for (int s = 0; s < 3; ++s) chunks.push_back({&seqs[s], std::span<const TokenId>(&toks[s], 1)});
  mnemo::kernels::traffic_start();
  REQUIRE(m.forward_batch(chunks, std::span<float>(logits.data(), 3 * V)));
  auto three = mnemo::kernels::traffic_stop();
  const int64_t expert_bytes = 3 * c.moe_intermediate_size * c.hidden_size * 2;
  const int64_t base = hand_weight_bytes(c, std::vector<int64_t>(k_experts.size(), 0), 3);
  std::vector<int64_t> most(k_experts.size(), std::min(c.n_routed_experts, 3 * c.num_experts_per_tok));
  CHECK(three.weight_bytes >= hand_weight_bytes(c, k_experts, 3));
  CHECK(three.weight_bytes <= hand_weight_bytes(c, most, 3));
  INFO("three rows read " << three.weight_bytes << " B, without routed experts " << base << " B");
  CHECK((three.weight_bytes - base) % expert_bytes == 0);
  CHECK(three.kv_bytes == hand_kv_bytes(c, 49) + hand_kv_bytes(c, 69) + hand_kv_bytes(c, 89));
}
