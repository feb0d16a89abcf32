// The checkpoint layout of a DeepSeek-V4 config: names, dtypes and shapes of every tensor.
#include <mnemo/inference/model_tensors.h>
#include <mnemo/inference/weights.h>

#include <algorithm>
#include <unordered_set>

namespace mnemo::inference {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// What a matrix becomes in the FP8 release: quantized to FP8 blocks, FP4 (routed experts) or kept
// BF16.
enum class MatrixClass { kBf16, kFp8, kFp4 };

class Builder {
 public:
  Builder(const ModelConfig& c, WeightFormat f) : c_(c), format_(f) {}

  void plain(std::string name, DType dtype, std::vector<int64_t> shape) {
    TensorSpec s;
    s.name = std::move(name);
    s.dtype = dtype;
    s.params = 1;
    for (int64_t d : shape) s.params *= d;
    s.shape = std::move(shape);
    s.layer = layer_;
    out_.push_back(std::move(s));
  }

  // `module` is the name without ".weight"; shape [out, in].
  void matrix(const std::string& module, int64_t out, int64_t in, MatrixClass cls,
              int64_t expert = -1) {
    TensorSpec w;
    w.name = module + ".weight";
    w.params = out * in;
    w.layer = layer_;
    w.expert = expert;
    if (format_ == WeightFormat::kBf16 || cls == MatrixClass::kBf16) {
      w.dtype = DType::kBF16;
      w.shape = {out, in};
      out_.push_back(std::move(w));
      return;
    }
    TensorSpec s;
    s.name = module + ".scale";
    s.dtype = DType::kF8E8M0;
    s.storage = Storage::kScale;
    s.layer = layer_;
    s.expert = expert;
    if (cls == MatrixClass::kFp8) {
      w.dtype = DType::kF8E4M3;
      w.shape = {out, in};
      w.storage = Storage::kFp8Block;
      s.shape = {ceil_div(out, kFp8BlockSize), ceil_div(in, kFp8BlockSize)};
    } else {
      w.dtype = DType::kI8;
      w.shape = {out, ceil_div(in, 2)};
      w.storage = Storage::kFp4Packed;
      s.shape = {out, ceil_div(in, kFp4BlockSize)};
    }
    out_.push_back(std::move(w));
    out_.push_back(std::move(s));
  }

  void hc(const std::string& prefix, int64_t rows) {
    int64_t d = c_.hidden_size;
    plain(prefix + "_fn", DType::kF32, {rows, c_.hc_mult * d});
    plain(prefix + "_base", DType::kF32, {rows});
    plain(prefix + "_scale", DType::kF32, {rows == c_.hc_mult ? 1 : 3});
  }

  void compressor(const std::string& p, int ratio, int64_t dim) {
    int64_t width = (ratio == kCsaRatio ? 2 : 1) * dim;
    matrix(p + ".wkv", width, c_.hidden_size, MatrixClass::kBf16);
    matrix(p + ".wgate", width, c_.hidden_size, MatrixClass::kBf16);
    plain(p + ".ape", DType::kF32, {ratio, width});
    plain(p + ".norm.weight", DType::kBF16, {dim});
  }

  void block(const std::string& p, int64_t layer, bool mtp) {
    layer_ = layer;
    const ModelConfig& c = c_;
    int64_t d = c.hidden_size, hd = c.head_dim, h = c.num_attention_heads;
    int64_t mix = (2 + c.hc_mult) * c.hc_mult;
    if (mtp) {
      matrix(p + "e_proj", d, d, MatrixClass::kFp8);
      matrix(p + "h_proj", d, d, MatrixClass::kFp8);
      plain(p + "enorm.weight", DType::kBF16, {d});
      plain(p + "hnorm.weight", DType::kBF16, {d});
    }
    hc(p + "hc_attn", mix);
    hc(p + "hc_ffn", mix);
    plain(p + "attn_norm.weight", DType::kBF16, {d});
    plain(p + "ffn_norm.weight", DType::kBF16, {d});
    matrix(p + "attn.wq_a", c.q_lora_rank, d, MatrixClass::kFp8);
    plain(p + "attn.q_norm.weight", DType::kBF16, {c.q_lora_rank});
    matrix(p + "attn.wq_b", h * hd, c.q_lora_rank, MatrixClass::kFp8);
    matrix(p + "attn.wkv", hd, d, MatrixClass::kFp8);
    plain(p + "attn.kv_norm.weight", DType::kBF16, {hd});
    matrix(p + "attn.wo_a", c.o_groups * c.o_lora_rank, h * hd / c.o_groups, MatrixClass::kFp8);
    matrix(p + "attn.wo_b", d, c.o_groups * c.o_lora_rank, MatrixClass::kFp8);
    plain(p + "attn.attn_sink", DType::kF32, {h});
    int ratio = c.compress_ratio(layer);
    if (ratio != 0) compressor(p + "attn.compressor", ratio, hd);
    if (ratio == kCsaRatio) {
      matrix(p + "attn.indexer.wq_b", c.index_n_heads * c.index_head_dim, c.q_lora_rank,
             MatrixClass::kFp8);
      matrix(p + "attn.indexer.weights_proj", c.index_n_heads, d, MatrixClass::kBf16);
      compressor(p + "attn.indexer.compressor", ratio, c.index_head_dim);
    }
    matrix(p + "ffn.gate", c.n_routed_experts, d, MatrixClass::kBf16);
    if (!mtp && c.is_hash_layer(layer)) {
      plain(p + "ffn.gate.tid2eid", DType::kI64, {c.vocab_size, c.num_experts_per_tok});
    } else {
      plain(p + "ffn.gate.bias", DType::kF32, {c.n_routed_experts});
    }
    int64_t inter = c.moe_intermediate_size;
    for (int64_t e = 0; e < c.n_routed_experts; ++e) {
      std::string ep = p + "ffn.experts." + std::to_string(e);
      matrix(ep + ".w1", inter, d, MatrixClass::kFp4, e);
      matrix(ep + ".w2", d, inter, MatrixClass::kFp4, e);
      matrix(ep + ".w3", inter, d, MatrixClass::kFp4, e);
    }
    if (c.n_shared_experts > 0) {
      int64_t si = inter * c.n_shared_experts;
      matrix(p + "ffn.shared_experts.w1", si, d, MatrixClass::kFp8);
      matrix(p + "ffn.shared_experts.w2", d, si, MatrixClass::kFp8);
      matrix(p + "ffn.shared_experts.w3", si, d, MatrixClass::kFp8);
    }
    if (mtp) {
      plain(p + "norm.weight", DType::kBF16, {d});
      hc(p + "hc_head", c.hc_mult);
    }
    layer_ = -1;
  }

  std::vector<TensorSpec> build() {
    const ModelConfig& c = c_;
    plain("embed.weight", DType::kBF16, {c.vocab_size, c.hidden_size});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      block("layers." + std::to_string(i) + ".", i, false);
    for (int64_t k = 0; k < c.num_nextn_predict_layers; ++k) {
      block("mtp." + std::to_string(k) + ".", c.num_hidden_layers + k, true);
    }
    plain("norm.weight", DType::kBF16, {c.hidden_size});
    hc("hc_head", c.hc_mult);
    plain("head.weight", DType::kBF16, {c.vocab_size, c.hidden_size});
    return std::move(out_);
  }

 private:
  const ModelConfig& c_;
  WeightFormat format_;
  int64_t layer_ = -1;
  std::vector<TensorSpec> out_;
};

DTypeSet accepted_dtypes(const TensorSpec& s) {
  switch (s.storage) {
    case Storage::kScale:
      return {DType::kF8E8M0, DType::kF32};
    case Storage::kFp4Packed:
      return {DType::kI8, DType::kU8};
    default:
      break;
  }
  if (s.dtype == DType::kI64) return {DType::kI64, DType::kI32};
  return s.dtype;
}

int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

}  // namespace

std::string_view weight_format_name(WeightFormat format) {
  return format == WeightFormat::kFp8 ? "fp8" : "bf16";
}

std::vector<TensorSpec> expected_tensors(const ModelConfig& config, WeightFormat format) {
  return Builder(config, format).build();
}

Result<WeightFormat> detect_weight_format(const Weights& weights) {
  constexpr std::string_view kProbe = "layers.0.attn.wq_a.weight";
  const Tensor* t = weights.find(kProbe);
  if (!t)
    return Status::not_found(weights.dir() + ": tensor '" + std::string(kProbe) + "' is missing");
  if (t->dtype == DType::kF8E4M3) return WeightFormat::kFp8;
  if (t->dtype == DType::kBF16) return WeightFormat::kBf16;
  return Status::unsupported(weights.dir() + ": tensor '" + std::string(kProbe) + "' is " +
                             std::string(dtype_name(t->dtype)) + "; expected BF16 or F8_E4M3");
}

Status validate(const Weights& weights, const ModelConfig& config, WeightFormat format) {
  std::vector<TensorSpec> specs = expected_tensors(config, format);
  std::unordered_set<std::string_view> names;
  for (const TensorSpec& s : specs) {
    names.insert(s.name);
    auto t = weights.require(s.name, accepted_dtypes(s), s.shape);
    if (!t)
      return t.status().with_context(std::string("checkpoint (") +
                                     std::string(weight_format_name(format)) + ")");
  }
  for (const Tensor* t : weights.tensors()) {
    if (!names.count(t->name)) {
      return Status::invalid_argument(weights.dir() + ": unexpected tensor '" + t->name +
                                      "' (not part of this config's " +
                                      std::string(weight_format_name(format)) + " checkpoint)");
    }
  }
  return Status::ok();
}

Status validate(const Weights& weights, const ModelConfig& config) {
  auto format = detect_weight_format(weights);
  if (!format) return format.status();
  return validate(weights, config, *format);
}

ParamCounts count_params(const ModelConfig& config, WeightFormat format) {
  ParamCounts p;
  for (const TensorSpec& s : expected_tensors(config, format)) {
    int64_t bytes = static_cast<int64_t>(dtype_size(s.dtype));
    for (int64_t d : s.shape) bytes *= d;
    p.bytes += bytes;
    // The first num_experts_per_tok experts stand for whichever ones a token selects: all are
    // alike.
    bool mtp = s.layer >= config.num_hidden_layers;
    (mtp ? p.mtp_total : p.total) += s.params;
    // A token reads one embedding row; this is how the published active counts (13B, 49B) come out.
    int64_t active = s.name == "embed.weight"                ? config.hidden_size
                     : s.expert < config.num_experts_per_tok ? s.params
                                                             : 0;
    (mtp ? p.mtp_active : p.active) += active;
  }
  return p;
}

int64_t serving_kv_entry_bytes(const ModelConfig& c) {
  int64_t nope = c.nope_head_dim();
  return round_up(nope + ceil_div(nope, 64), 8) + 2 * c.qk_rope_head_dim;
}

int64_t serving_indexer_key_bytes(const ModelConfig& c) {
  return ceil_div(c.index_head_dim, 2) + ceil_div(c.index_head_dim, kFp4BlockSize);
}

KvFigures kv_figures(const ModelConfig& c, int64_t context) {
  KvFigures f;
  f.context = context;
  const int64_t bf16_entry = 2 * c.head_dim;
  const int64_t bf16_ikey = 2 * c.index_head_dim;
  const int64_t serving_entry = serving_kv_entry_bytes(c);
  const int64_t serving_ikey = serving_indexer_key_bytes(c);
  const int64_t ring_entries = std::min(c.sliding_window, context);
  auto add_layer = [&](KvKindFigures& k, int64_t layer) {
    int ratio = c.compress_ratio(layer);
    ++k.layers;
    k.bf16_ring_bytes += ring_entries * bf16_entry;
    k.serving_ring_bytes += ring_entries * serving_entry;
    if (ratio == 0) return;
    bool csa = ratio == kCsaRatio;
    int64_t bf16 = bf16_entry + (csa ? bf16_ikey : 0);
    int64_t serving = serving_entry + (csa ? serving_ikey : 0);
    k.bf16_bytes_per_token += static_cast<double>(bf16) / ratio;
    k.serving_bytes_per_token += static_cast<double>(serving) / ratio;
    k.bf16_bytes_at_context += context / ratio * bf16;
    k.serving_bytes_at_context += context / ratio * serving;
    // The reference's running fp32 kv and score state: (1 + overlap) * ratio slots of the
    // compressor width.
    int64_t coff = csa ? 2 : 1;
    k.carry_bytes += 2 * coff * ratio * coff * c.head_dim * 4;
    if (csa) k.carry_bytes += 2 * 2 * ratio * 2 * c.index_head_dim * 4;
  };
  for (LayerKind kind : {LayerKind::kWindow, LayerKind::kCsa, LayerKind::kHca}) {
    KvKindFigures k;
    k.kind = kind;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      if (c.layer_kind(i) == kind) add_layer(k, i);
    }
    f.bf16_bytes_per_token += k.bf16_bytes_per_token;
    f.serving_bytes_per_token += k.serving_bytes_per_token;
    f.bf16_bytes_at_context += k.bf16_bytes_at_context + k.bf16_ring_bytes + k.carry_bytes;
    f.serving_bytes_at_context += k.serving_bytes_at_context + k.serving_ring_bytes + k.carry_bytes;
    f.kinds.push_back(k);
  }
  f.mtp.kind = LayerKind::kWindow;
  for (int64_t i = c.num_hidden_layers; i < c.num_hidden_layers + c.num_nextn_predict_layers; ++i)
    add_layer(f.mtp, i);
  return f;
}

}  // namespace mnemo::inference
