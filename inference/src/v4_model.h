#pragma once
// The DeepSeek-V4 forward pass over a chunk of one sequence: embedding into hc streams, the blocks
// (attention and MoE, each wrapped by hyper-connections), the hc head, the final norm and the head; and
// the MTP block's draft logits.
#include <cstdint>
#include <span>
#include <vector>

#include "v4_attention.h"
#include "v4_dims.h"
#include "v4_math.h"
#include "v4_params.h"
#include "v4_state.h"

namespace mnemo::inference::v4 {

// Optional intermediates of a forward call, for tests against the reference and for the MTP block.
struct ForwardTrace {
  bool want_layers = false;
  std::vector<float> final_streams;  // [n, hc, d] after the last block
  std::vector<float> hc_head_out;    // [n, d]
  std::vector<float> final_normed;   // [n, d]
  std::vector<std::vector<float>> attn_out, ffn_out, streams;  // per layer, when want_layers
};

// One sequence's part of a step: its state and the tokens it advances by (a prefill chunk or one
// decode token). A step's rows are the sequences' tokens, concatenated in order.
struct StepSequence {
  SequenceState* state;
  std::span<const int32_t> tokens;
  // Logits of the chunk's last token only (the one a sampler needs); the rest of a prefill chunk skips
  // the head, which at a 129k vocabulary costs more than the layers.
  bool last_logits_only = false;
};

class Model {
 public:
  Model(Dims dims, ModelParams params);

  const Dims& dims() const { return dims_; }
  SequenceState new_sequence() const;
  SequenceState new_mtp_sequence() const;

  // Tokens at positions [state.pos, state.pos + n); logits [n, vocab] for every position.
  void forward(SequenceState& state, std::span<const int32_t> tokens, float* logits, ForwardTrace* trace) const;
  // Several sequences in one step; logits [rows wanted, vocab]: every token's row, or only the last one
  // for sequences that ask so (ignored when a trace is taken). Each row's numbers are the same bits as
  // when its sequence runs alone.
  void forward_step(std::span<const StepSequence> seqs, float* logits, ForwardTrace* trace) const;

  // The MTP block at positions [state.pos, +n): streams are the main model's final streams [n, hc, d]
  // at those positions and next_tokens the tokens one position later; logits [n, vocab].
  void mtp_forward(SequenceState& state, const float* streams, std::span<const int32_t> next_tokens,
                   float* logits) const;

 private:
  void block(const BlockParams& b, int layer, const RopeTable& rope, std::span<const Segment> segments,
             const int32_t* tokens, int n, std::vector<float>& X, ForwardTrace* trace) const;
  void head(const HcParams& hc_head, const std::vector<float>& norm, const std::vector<float>& X, int n,
            float* logits, ForwardTrace* trace) const;

  Dims dims_;
  ModelParams p_;
  RopeTable rope_plain_, rope_compressed_;
};

}  // namespace mnemo::inference::v4
