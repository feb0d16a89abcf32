#include <mnemo/inference/model.h>
#include <mnemo/inference/weights.h>

#include <mnemo/base/file.h>
#include <mnemo/base/sha256.h>
#include <mnemo/inference/kv_state.h>

#include "model_impl.h"
#include "v4_load.h"

namespace mnemo::inference {

Sequence::Sequence(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sequence::Sequence(Sequence&&) noexcept = default;
Sequence& Sequence::operator=(Sequence&&) noexcept = default;
Sequence::~Sequence() = default;
int64_t Sequence::position() const { return impl_->state.pos; }

namespace {

v4::Dims dims_from_config(const ModelConfig& c) {
  v4::Dims d;
  d.vocab = static_cast<int>(c.vocab_size);
  d.d = static_cast<int>(c.hidden_size);
  d.n_layers = static_cast<int>(c.num_hidden_layers);
  d.n_heads = static_cast<int>(c.num_attention_heads);
  d.head_dim = static_cast<int>(c.head_dim);
  d.rope_dim = static_cast<int>(c.qk_rope_head_dim);
  d.q_lora = static_cast<int>(c.q_lora_rank);
  d.o_groups = static_cast<int>(c.o_groups);
  d.o_lora = static_cast<int>(c.o_lora_rank);
  d.window = static_cast<int>(c.sliding_window);
  d.ratios = c.compress_ratios;
  d.index_heads = static_cast<int>(c.index_n_heads);
  d.index_dim = static_cast<int>(c.index_head_dim);
  d.index_topk = static_cast<int>(c.index_topk);
  d.n_experts = static_cast<int>(c.n_routed_experts);
  d.n_active = static_cast<int>(c.num_experts_per_tok);
  d.moe_inter = static_cast<int>(c.moe_intermediate_size);
  d.n_hash_layers = static_cast<int>(c.num_hash_layers);
  d.route_scale = static_cast<float>(c.routed_scaling_factor);
  d.swiglu_limit = static_cast<float>(c.swiglu_limit);
  d.hc = static_cast<int>(c.hc_mult);
  d.sinkhorn_iters = static_cast<int>(c.hc_sinkhorn_iters);
  d.hc_eps = static_cast<float>(c.hc_eps);
  d.norm_eps = static_cast<float>(c.rms_norm_eps);
  d.rope_theta = c.rope_theta;
  d.compress_theta = c.compress_rope_theta;
  d.yarn_factor = c.rope_scaling.factor;
  d.yarn_beta_fast = c.rope_scaling.beta_fast;
  d.yarn_beta_slow = c.rope_scaling.beta_slow;
  d.yarn_original_max = static_cast<double>(c.rope_scaling.original_max_position_embeddings);
  d.n_mtp = static_cast<int>(c.num_nextn_predict_layers);
  return d;
}

// SHA-256 over the config, every tensor's name, dtype and shape, and its bytes: all of them for tensors
// up to 1 MiB, and 4 KiB of every MiB (plus the last 4 KiB) of larger ones, so that loading a
// multi-gigabyte checkpoint does not read it all, while two checkpoints of different weights differ. Also
// tokenizer.json when present, the KV format version and the precision: stored KV depends on all three.
std::string model_fingerprint(const ModelConfig& config, const Weights& weights, const std::string& dir,
                              Precision precision, uint32_t kv_format = kKvFormatVersion) {
  constexpr size_t kWhole = 1 << 20, kSample = 4096;
  Sha256 h;
  h.update_field(config.to_json());
  h.update_field("kv format " + std::to_string(kv_format)).update_field(precision_name(precision));
  auto tokenizer = read_file(dir + "/tokenizer.json");
  h.update_field(tokenizer ? "tokenizer.json" : "no tokenizer.json");
  h.update_field(tokenizer ? std::string_view(*tokenizer) : std::string_view());
  for (const Tensor* t : weights.tensors()) {
    h.update_field(t->name).update_field(dtype_name(t->dtype)).update_field(shape_string(t->shape));
    if (t->bytes <= kWhole) {
      h.update(t->data, t->bytes);
      continue;
    }
    for (size_t at = 0; at + kSample <= t->bytes; at += kWhole) h.update(t->data + at, kSample);
    h.update(t->data + t->bytes - kSample, kSample);
  }
  return to_hex(h.finish());
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::string_view precision_name(Precision p) {
  switch (p) {
    case Precision::kF32: return "fp32";
    case Precision::kBf16: return "bf16";
    case Precision::kServing: return "serving";
  }
  return "?";
}

Result<Precision> parse_precision(std::string_view name) {
  for (Precision p : {Precision::kF32, Precision::kBf16, Precision::kServing}) {
    if (name == precision_name(p)) return p;
  }
  return Status::invalid_argument("unknown precision '" + std::string(name) + "' (use fp32, bf16 or serving)");
}

Result<std::unique_ptr<Model>> Model::load(const std::string& dir, ModelOptions options) {
  auto config = load_model_config(dir + "/config.json");
  if (!config) return config.status();
  auto weights = Weights::open(dir);
  if (!weights) return weights.status();
  auto impl = std::make_unique<Impl>(Impl{std::move(config).value(), std::move(weights).value(), nullptr, {}, {}});
  impl->fingerprint = model_fingerprint(impl->config, impl->weights, dir, options.precision);
  impl->dir = dir;
  v4::Dims dims = dims_from_config(impl->config);
  impl->precision = options.precision;
  dims.numerics = numerics_of(options.precision);
  auto params = v4::bind_params(dims, impl->weights);
  if (!params) return params.status().with_context(dir);
  impl->model = std::make_unique<v4::Model>(std::move(dims), std::move(params).value());
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

const ModelConfig& Model::config() const { return impl_->config; }
const std::string& Model::fingerprint() const { return impl_->fingerprint; }
std::string Model::fingerprint_at_kv_format(uint32_t version) const {
  if (version == kKvFormatVersion) return impl_->fingerprint;
  return model_fingerprint(impl_->config, impl_->weights, impl_->dir, impl_->precision, version);
}
Precision Model::precision() const { return impl_->precision; }

Sequence Model::new_sequence() const {
  return Sequence(std::make_unique<Sequence::Impl>(Sequence::Impl{impl_->model->new_sequence()}));
}

Sequence Model::new_mtp_sequence() const {
  return Sequence(std::make_unique<Sequence::Impl>(Sequence::Impl{impl_->model->new_mtp_sequence()}));
}

namespace {

// A sequence made by another model, or the MTP block's cache used for the main model (or the reverse),
// has state of other shapes: refused before any kernel reads it.
Status check_owner(const v4::Model& model, const v4::SequenceState& st, bool mtp) {
  if (st.owner != &model) return Status::invalid_argument("the sequence belongs to another model");
  if (st.mtp != mtp) {
    return Status::invalid_argument(mtp ? "the MTP block needs a sequence from new_mtp_sequence()"
                                        : "an MTP sequence cannot run through the main model");
  }
  return Status::ok();
}

Status check_tokens(const ModelConfig& c, int64_t pos, std::span<const TokenId> tokens, size_t logits_size) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      return Status::invalid_argument("token " + std::to_string(i) + " has id " + std::to_string(tokens[i]) +
                                      ", outside the vocabulary of " + std::to_string(c.vocab_size));
    }
  }
  if (pos + static_cast<int64_t>(tokens.size()) > c.max_position_embeddings) {
    return Status::invalid_argument("positions up to " + std::to_string(pos + tokens.size()) +
                                    " exceed max_position_embeddings " + std::to_string(c.max_position_embeddings));
  }
  if (logits_size < tokens.size() * static_cast<size_t>(c.vocab_size)) {
    return Status::invalid_argument("logits buffer is smaller than n_tokens * vocab_size");
  }
  return Status::ok();
}

}  // namespace

Status Model::forward(Sequence& seq, std::span<const TokenId> tokens, std::span<float> logits,
                      ForwardOutputs* outputs) const {
  if (tokens.empty()) return Status::ok();
  MNEMO_RETURN_IF_ERROR(check_owner(*impl_->model, seq.impl_->state, false));
  MNEMO_RETURN_IF_ERROR(check_tokens(impl_->config, seq.position(), tokens, logits.size()));
  v4::ForwardTrace trace;
  if (outputs) trace.want_layers = outputs->keep_layers;
  impl_->model->forward(seq.impl_->state, tokens, logits.data(), outputs ? &trace : nullptr);
  if (outputs) {
    outputs->final_streams = std::move(trace.final_streams);
    outputs->hc_head_out = std::move(trace.hc_head_out);
    outputs->final_normed = std::move(trace.final_normed);
    outputs->attn_out = std::move(trace.attn_out);
    outputs->ffn_out = std::move(trace.ffn_out);
    outputs->layer_streams = std::move(trace.streams);
  }
  return Status::ok();
}

Status Model::forward_batch(std::span<const SequenceChunk> chunks, std::span<float> logits) const {
  std::vector<v4::StepSequence> step;
  size_t rows = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SequenceChunk& c = chunks[i];
    if (!c.sequence) return Status::invalid_argument("chunk " + std::to_string(i) + " has no sequence");
    MNEMO_RETURN_IF_ERROR(check_owner(*impl_->model, c.sequence->impl_->state, false)
                              .with_context("chunk " + std::to_string(i)));
    for (size_t j = 0; j < i; ++j) {
      if (chunks[j].sequence == c.sequence) {
        return Status::invalid_argument("sequence of chunk " + std::to_string(i) + " appears twice in one step");
      }
    }
    Status s = check_tokens(impl_->config, c.sequence->position(), c.tokens,
                            c.tokens.size() * static_cast<size_t>(impl_->config.vocab_size));
    if (!s) return s.with_context("chunk " + std::to_string(i));
    if (c.tokens.empty()) continue;
    rows += c.last_logits_only ? 1 : c.tokens.size();
    step.push_back({&c.sequence->impl_->state, c.tokens, c.last_logits_only});
  }
  if (logits.size() < rows * static_cast<size_t>(impl_->config.vocab_size)) {
    return Status::invalid_argument("logits buffer is smaller than total tokens * vocab_size");
  }
  if (!step.empty()) impl_->model->forward_step(step, logits.data(), nullptr);
  return Status::ok();
}

Status Model::mtp_forward(Sequence& mtp_seq, std::span<const float> streams, std::span<const TokenId> next_tokens,
                          std::span<float> logits) const {
  const ModelConfig& c = impl_->config;
  if (c.num_nextn_predict_layers < 1) return Status::invalid_argument("this model has no MTP block");
  if (next_tokens.empty()) return Status::ok();
  MNEMO_RETURN_IF_ERROR(check_owner(*impl_->model, mtp_seq.impl_->state, true));
  MNEMO_RETURN_IF_ERROR(check_tokens(c, mtp_seq.position(), next_tokens, logits.size()));
  if (streams.size() < next_tokens.size() * static_cast<size_t>(c.hc_mult * c.hidden_size)) {
    return Status::invalid_argument("streams buffer is smaller than n_tokens * hc_mult * hidden_size");
  }
  impl_->model->mtp_forward(mtp_seq.impl_->state, streams.data(), next_tokens, logits.data());
  return Status::ok();
}

}  // namespace mnemo::inference
