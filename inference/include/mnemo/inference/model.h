#pragma once
// A loaded DeepSeek-V4 model and its per-sequence state: the forward pass over chunks of tokens
// (prefill of any size at any position, or one token at a time), and the MTP block's draft logits.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/inference/model_config.h>
#include <mnemo/inference/tokenizer.h>

namespace mnemo::inference {

struct KvExport;

// One sequence's KV state (window rings, compressed entries, indexer keys, compressor carry).
class Sequence {
 public:
  Sequence(Sequence&&) noexcept;
  Sequence& operator=(Sequence&&) noexcept;
  ~Sequence();
  // Tokens processed so far: the position of the next token.
  int64_t position() const;

  struct Impl;

 private:
  explicit Sequence(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class Model;
};

// Intermediates a caller may ask forward() to keep: for checks against the reference, and the final
// streams that feed the MTP block.
struct ForwardOutputs {
  bool keep_layers = false;
  std::vector<float> final_streams;  // [n, hc_mult, hidden]
  std::vector<float> hc_head_out;    // [n, hidden]
  std::vector<float> final_normed;   // [n, hidden]
  std::vector<std::vector<float>> attn_out, ffn_out, layer_streams;  // per layer, when keep_layers
};

// How the forward pass rounds. kF32: fp32 activations, weights as stored (the golden reference path).
// kBf16: activations rounded to bf16 between ops. kServing: fp32 activations with the serving KV layout's
// roundings (FP8 E4M3 nope dims with power-of-two scales, FP4 indexer query and keys), spec section 3.
enum class Precision { kF32, kBf16, kServing };

std::string_view precision_name(Precision p);
Result<Precision> parse_precision(std::string_view name);  // "fp32", "bf16", "serving"

struct ModelOptions {
  Precision precision = Precision::kF32;
};

// One sequence's tokens in a batched step: a prefill chunk or a single decode token.
struct SequenceChunk {
  Sequence* sequence;
  std::span<const TokenId> tokens;
  // Only the last token's logits (what sampling needs): a prefill chunk then skips the head for the rest.
  bool last_logits_only = false;
};

class Model {
 public:
  // Loads DIR/config.json and the safetensors weights (memory-mapped).
  static Result<std::unique_ptr<Model>> load(const std::string& dir, ModelOptions options = {});
  ~Model();

  const ModelConfig& config() const;
  Precision precision() const;
  Sequence new_sequence() const;
  // State for the MTP block (its own window cache).
  Sequence new_mtp_sequence() const;

  // Runs tokens at positions [seq.position(), + n) and writes logits [n, vocab_size] for each of them.
  Status forward(Sequence& seq, std::span<const TokenId> tokens, std::span<float> logits,
                 ForwardOutputs* outputs = nullptr) const;
  // Several sequences in one step (continuous batching): logits rows follow the chunks in order, one per
  // token, or one per chunk with last_logits_only. Each sequence's logits are bit-identical to running
  // it alone.
  Status forward_batch(std::span<const SequenceChunk> chunks, std::span<float> logits) const;
  // The MTP block at positions [mtp_seq.position(), + n): streams [n, hc_mult, hidden] are the main
  // model's final streams there and next_tokens the tokens one position later.
  Status mtp_forward(Sequence& mtp_seq, std::span<const float> streams, std::span<const TokenId> next_tokens,
                     std::span<float> logits) const;

  // The model's identity for KV state: SHA-256 over its config, tensor layout and weight bytes (hex).
  const std::string& fingerprint() const;
  // The fingerprint these weights at this precision had under an earlier KV format: what a job started
  // before that format changed recorded (it resumes on the same model, prefilling instead of restoring).
  std::string fingerprint_at_kv_format(uint32_t version) const;

  // KV state after `from` (0, or a multiple of kKvSegmentAlign) as segments of `segment_span` tokens (a
  // multiple of kKvSegmentAlign; 0 = one segment) plus the tail at the sequence's position.
  Result<KvExport> export_state(const Sequence& seq, int64_t from, int64_t segment_span = 0) const;
  // Rebuilds a sequence from segments covering [0, p) in order and the tail at p. It decodes bit-identically
  // to the sequence that was exported. State of another model or precision is refused.
  Result<Sequence> import_state(const std::vector<std::string>& segments, std::string_view tail) const;

  struct Impl;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnemo::inference
