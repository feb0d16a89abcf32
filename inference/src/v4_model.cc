#include "v4_model.h"

#include <mnemo/kernels/linear.h>
#include <mnemo/kernels/numeric.h>
#include <mnemo/kernels/traffic.h>

#include "v4_attention.h"
#include "v4_hc.h"
#include "v4_kv_rows.h"
#include "v4_moe.h"

namespace mnemo::inference::v4 {

Model::Model(Dims dims, ModelParams params)
    : dims_(std::move(dims)), p_(std::move(params)), rope_plain_(dims_, false), rope_compressed_(dims_, true) {}

SequenceState Model::new_sequence() const {
  SequenceState s;
  s.layers.assign(static_cast<size_t>(dims_.n_layers), layer_state(dims_));
  s.owner = this;
  return s;
}

SequenceState Model::new_mtp_sequence() const {
  SequenceState s;
  s.layers.assign(1, layer_state(dims_));
  s.owner = this;
  s.mtp = true;
  return s;
}

void Model::block(const BlockParams& b, int layer, const RopeTable& rope, std::span<const Segment> segments,
                  const int32_t* tokens, int n, std::vector<float>& X, ForwardTrace* trace) const {
  const int d = dims_.d, hc = dims_.hc;
  std::vector<float> u(static_cast<size_t>(n) * d), y(static_cast<size_t>(n) * d);
  std::vector<float> post(static_cast<size_t>(n) * hc), comb(static_cast<size_t>(n) * hc * hc);
  std::vector<float> X2(X.size());

  hc_pre(dims_, b.hc_attn, X.data(), n, u.data(), post.data(), comb.data());
  for (int i = 0; i < n; ++i) rms_norm(&u[i * d], d, b.attn_norm.data(), dims_.norm_eps, &u[i * d]);
  round_bf16(dims_, u);
  attention_forward(dims_, b.attn, rope, u.data(), n, segments, y.data());
  if (trace && trace->want_layers) trace->attn_out[layer] = y;
  hc_post(dims_, X.data(), y.data(), post.data(), comb.data(), n, X2.data());
  round_bf16(dims_, X2);

  hc_pre(dims_, b.hc_ffn, X2.data(), n, u.data(), post.data(), comb.data());
  for (int i = 0; i < n; ++i) rms_norm(&u[i * d], d, b.ffn_norm.data(), dims_.norm_eps, &u[i * d]);
  round_bf16(dims_, u);
  moe_forward(dims_, b.moe, u.data(), tokens, n, y.data());
  if (trace && trace->want_layers) trace->ffn_out[layer] = y;
  hc_post(dims_, X2.data(), y.data(), post.data(), comb.data(), n, X.data());
  round_bf16(dims_, X);
  if (trace && trace->want_layers) trace->streams[layer] = X;
}

void Model::head(const HcParams& hc_head_params, const std::vector<float>& norm, const std::vector<float>& X, int n,
                 float* logits, ForwardTrace* trace) const {
  const int d = dims_.d;
  std::vector<float> h(static_cast<size_t>(n) * d);
  hc_head(dims_, hc_head_params, X.data(), n, h.data());
  if (trace) trace->hc_head_out = h;
  for (int i = 0; i < n; ++i) rms_norm(&h[i * d], d, norm.data(), dims_.norm_eps, &h[i * d]);
  if (trace) trace->final_normed = h;
  (void)kernels::linear(h.data(), n, p_.head, logits);
}

void Model::forward(SequenceState& state, std::span<const int32_t> tokens, float* logits, ForwardTrace* trace) const {
  StepSequence one{&state, tokens};
  forward_step({&one, 1}, logits, trace);
}

void Model::forward_step(std::span<const StepSequence> seqs, float* logits, ForwardTrace* trace) const {
  std::vector<int32_t> all_tokens;
  for (const StepSequence& s : seqs) all_tokens.insert(all_tokens.end(), s.tokens.begin(), s.tokens.end());
  std::span<const int32_t> tokens(all_tokens);
  const int n = static_cast<int>(tokens.size());
  const int d = dims_.d, hc = dims_.hc;
  std::vector<float> X(static_cast<size_t>(n) * hc * d);
  const auto* embed = static_cast<const uint16_t*>(p_.embed.data);
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < d; ++c) {
      float v = p_.embed.type == kernels::WeightType::kBF16
                    ? kernels::bf16_to_f32(embed[static_cast<size_t>(tokens[i]) * d + c])
                    : static_cast<const float*>(p_.embed.data)[static_cast<size_t>(tokens[i]) * d + c];
      for (int k = 0; k < hc; ++k) X[(static_cast<size_t>(i) * hc + k) * d + c] = v;
    }
  }
  kernels::count_weight_bytes(kernels::weight_bytes(kernels::row_slice(p_.embed, 0, 1)) * n);
  if (trace && trace->want_layers) {
    trace->attn_out.resize(static_cast<size_t>(dims_.n_layers));
    trace->ffn_out.resize(static_cast<size_t>(dims_.n_layers));
    trace->streams.resize(static_cast<size_t>(dims_.n_layers));
  }
  std::vector<Segment> segments(seqs.size());
  for (int l = 0; l < dims_.n_layers; ++l) {
    int row = 0;
    for (size_t s = 0; s < seqs.size(); ++s) {
      const int len = static_cast<int>(seqs[s].tokens.size());
      segments[s] = Segment{&seqs[s].state->layers[l], seqs[s].state->pos, row, len};
      row += len;
    }
    const RopeTable& rope = dims_.ratios[l] > 0 ? rope_compressed_ : rope_plain_;
    block(p_.layers[l], l, rope, segments, tokens.data(), n, X, trace);
  }
  if (trace) trace->final_streams = X;
  bool select = false;
  for (const StepSequence& s : seqs) select = select || (s.last_logits_only && s.tokens.size() > 1);
  if (select && !trace) {
    // Only the wanted rows go through the head: each row's result does not depend on the others.
    std::vector<float> Xsel;
    const size_t stride = static_cast<size_t>(hc) * d;
    int row = 0, kept = 0;
    for (const StepSequence& s : seqs) {
      const int len = static_cast<int>(s.tokens.size());
      for (int i = s.last_logits_only ? len - 1 : 0; i < len; ++i, ++kept) {
        Xsel.insert(Xsel.end(), X.begin() + static_cast<ptrdiff_t>((row + i) * stride),
                    X.begin() + static_cast<ptrdiff_t>((row + i + 1) * stride));
      }
      row += len;
    }
    head(p_.hc_head, p_.norm, Xsel, kept, logits, nullptr);
  } else {
    head(p_.hc_head, p_.norm, X, n, logits, trace);
  }
  for (const StepSequence& s : seqs) s.state->pos += static_cast<int64_t>(s.tokens.size());
}

void Model::mtp_forward(SequenceState& state, const float* streams, std::span<const int32_t> next_tokens,
                        float* logits) const {
  const MtpParams& m = p_.mtp.at(0);
  const int n = static_cast<int>(next_tokens.size());
  const int d = dims_.d, hc = dims_.hc;
  const auto* embed = static_cast<const uint16_t*>(p_.embed.data);
  std::vector<float> e(static_cast<size_t>(n) * d), eproj(static_cast<size_t>(n) * d);
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < d; ++c) {
      e[static_cast<size_t>(i) * d + c] = kernels::bf16_to_f32(embed[static_cast<size_t>(next_tokens[i]) * d + c]);
    }
    rms_norm(&e[static_cast<size_t>(i) * d], d, m.enorm.data(), dims_.norm_eps, &e[static_cast<size_t>(i) * d]);
  }
  (void)kernels::linear(e.data(), n, m.e_proj, eproj.data());
  std::vector<float> hn(static_cast<size_t>(n) * hc * d), X(static_cast<size_t>(n) * hc * d);
  for (size_t r = 0; r < static_cast<size_t>(n) * hc; ++r) {
    rms_norm(streams + r * d, d, m.hnorm.data(), dims_.norm_eps, &hn[r * d]);
  }
  (void)kernels::linear(hn.data(), static_cast<int64_t>(n) * hc, m.h_proj, X.data());
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < hc; ++k) {
      for (int c = 0; c < d; ++c) X[(static_cast<size_t>(i) * hc + k) * d + c] += eproj[static_cast<size_t>(i) * d + c];
    }
  }
  const int layer = dims_.n_layers;
  const RopeTable& rope = dims_.ratios[layer] > 0 ? rope_compressed_ : rope_plain_;
  Segment seg{&state.layers[0], state.pos, 0, n};
  block(m.block, layer, rope, {&seg, 1}, next_tokens.data(), n, X, nullptr);
  head(m.hc_head, m.norm, X, n, logits, nullptr);
  state.pos += n;
}

}  // namespace mnemo::inference::v4
