#include "v4_load.h"

#include <cstring>
#include <string>

namespace mnemo::inference::v4 {
namespace {

using kernels::ScaleType;
using kernels::WeightType;

class Binder {
 public:
  explicit Binder(const Weights& w) : w_(w) {}

  // A matrix [rows, cols] stored as BF16/F32, FP8 E4M3 with 128x128 block scales, or packed FP4 E2M1
  // with 32-wide scales; `module` is the name without ".weight".
  Result<WeightView> matrix(const std::string& module, int64_t rows, int64_t cols) const {
    std::string name = module + ".weight";
    const Tensor* t = w_.find(name);
    if (!t) return Status::invalid_argument("checkpoint has no tensor " + name);
    WeightView v;
    v.rows = rows;
    v.cols = cols;
    if (t->dtype == DType::kBF16 || t->dtype == DType::kF32) {
      auto r = w_.require(name, {DType::kBF16, DType::kF32}, {rows, cols});
      if (!r) return r.status();
      v.type = t->dtype == DType::kBF16 ? WeightType::kBF16 : WeightType::kF32;
      v.data = t->data;
      return v;
    }
    const bool fp8 = t->dtype == DType::kF8E4M3;
    if (!fp8 && t->dtype != DType::kI8 && t->dtype != DType::kU8) {
      return Status::invalid_argument(name + ": dtype " + std::string(dtype_name(t->dtype)) +
                                      " is not BF16, F32, F8_E4M3 or packed FP4 (I8/U8)");
    }
    if (!fp8 && cols % 32 != 0) return Status::invalid_argument(name + ": FP4 needs a multiple of 32 inputs");
    auto r = w_.require(name, t->dtype, {rows, fp8 ? cols : cols / 2});
    if (!r) return r.status();
    std::vector<int64_t> scale_shape =
        fp8 ? std::vector<int64_t>{(rows + 127) / 128, (cols + 127) / 128} : std::vector<int64_t>{rows, cols / 32};
    auto s = w_.require(module + ".scale", {DType::kF8E8M0, DType::kF32}, scale_shape);
    if (!s) return s.status();
    v.type = fp8 ? WeightType::kF8E4M3Block128 : WeightType::kFP4E2M1Group32;
    v.data = t->data;
    v.scale = (*s)->data;
    v.scale_type = (*s)->dtype == DType::kF32 ? ScaleType::kF32 : ScaleType::kUe8m0;
    return v;
  }

  // A small BF16/F32 tensor of exactly `shape`, as fp32 values.
  Result<std::vector<float>> floats(const std::string& name, const std::vector<int64_t>& shape) const {
    auto r = w_.require(name, {DType::kBF16, DType::kF32}, shape);
    if (!r) return r.status();
    const Tensor& t = **r;
    std::vector<float> out(static_cast<size_t>(t.numel()));
    for (size_t i = 0; i < out.size(); ++i) {
      if (t.dtype == DType::kF32) {
        std::memcpy(&out[i], t.data + 4 * i, 4);
      } else {
        uint16_t b;
        std::memcpy(&b, t.data + 2 * i, 2);
        out[i] = bf16_to_f32(b);
      }
    }
    return out;
  }

  Result<std::vector<int32_t>> expert_ids(const std::string& name, int64_t vocab, int64_t k, int64_t n_experts) const {
    auto r = w_.require(name, {DType::kI64, DType::kI32}, {vocab, k});
    if (!r) return r.status();
    const Tensor& t = **r;
    std::vector<int32_t> out(static_cast<size_t>(t.numel()));
    for (size_t i = 0; i < out.size(); ++i) {
      int64_t v;
      if (t.dtype == DType::kI64) {
        std::memcpy(&v, t.data + 8 * i, 8);
      } else {
        int32_t v32;
        std::memcpy(&v32, t.data + 4 * i, 4);
        v = v32;
      }
      if (v < 0 || v >= n_experts) {
        return Status::invalid_argument(name + ": expert id " + std::to_string(v) + " at index " +
                                        std::to_string(i) + " is out of range");
      }
      out[i] = static_cast<int32_t>(v);
    }
    return out;
  }

 private:
  const Weights& w_;
};

#define MNEMO_ASSIGN(lhs, expr)              \
  do {                                       \
    auto _r = (expr);                        \
    if (!_r) return _r.status();             \
    lhs = std::move(_r).value();             \
  } while (0)

Status bind_hc(const Binder& b, const std::string& prefix, const Dims& dims, int n_mix, HcParams& hc) {
  hc.n_mix = n_mix;
  int n_scale = n_mix == dims.hc ? 1 : 3;
  MNEMO_ASSIGN(hc.fn, b.floats(prefix + "_fn", {n_mix, static_cast<int64_t>(dims.hc) * dims.d}));
  MNEMO_ASSIGN(hc.base, b.floats(prefix + "_base", {n_mix}));
  MNEMO_ASSIGN(hc.scale, b.floats(prefix + "_scale", {n_scale}));
  return Status::ok();
}

Status bind_compressor(const Binder& b, const std::string& prefix, const Dims& dims, int ratio, int width,
                       bool hadamard, CompressorParams& c) {
  c.ratio = ratio;
  c.width = width;
  c.hadamard = hadamard;
  int64_t row = ratio == 4 ? 2 * width : width;
  MNEMO_ASSIGN(c.wkv, b.matrix(prefix + ".wkv", row, dims.d));
  MNEMO_ASSIGN(c.wgate, b.matrix(prefix + ".wgate", row, dims.d));
  MNEMO_ASSIGN(c.ape, b.floats(prefix + ".ape", {ratio, row}));
  MNEMO_ASSIGN(c.norm, b.floats(prefix + ".norm.weight", {width}));
  return Status::ok();
}

Status bind_block(const Binder& b, const std::string& prefix, const Dims& dims, int layer, BlockParams& blk) {
  const int64_t d = dims.d, H = dims.n_heads, hd = dims.head_dim;
  MNEMO_RETURN_IF_ERROR(bind_hc(b, prefix + "hc_attn", dims, 6 * dims.hc, blk.hc_attn));
  MNEMO_RETURN_IF_ERROR(bind_hc(b, prefix + "hc_ffn", dims, 6 * dims.hc, blk.hc_ffn));
  MNEMO_ASSIGN(blk.attn_norm, b.floats(prefix + "attn_norm.weight", {d}));
  MNEMO_ASSIGN(blk.ffn_norm, b.floats(prefix + "ffn_norm.weight", {d}));

  AttentionParams& a = blk.attn;
  a.ratio = dims.ratios[layer];
  std::string ap = prefix + "attn.";
  MNEMO_ASSIGN(a.wq_a, b.matrix(ap + "wq_a", dims.q_lora, d));
  MNEMO_ASSIGN(a.q_norm, b.floats(ap + "q_norm.weight", {dims.q_lora}));
  MNEMO_ASSIGN(a.wq_b, b.matrix(ap + "wq_b", H * hd, dims.q_lora));
  MNEMO_ASSIGN(a.wkv, b.matrix(ap + "wkv", hd, d));
  MNEMO_ASSIGN(a.kv_norm, b.floats(ap + "kv_norm.weight", {hd}));
  MNEMO_ASSIGN(a.wo_a, b.matrix(ap + "wo_a", static_cast<int64_t>(dims.o_groups) * dims.o_lora, H * hd / dims.o_groups));
  MNEMO_ASSIGN(a.wo_b, b.matrix(ap + "wo_b", d, static_cast<int64_t>(dims.o_groups) * dims.o_lora));
  MNEMO_ASSIGN(a.sink, b.floats(ap + "attn_sink", {H}));
  if (a.ratio > 0) {
    MNEMO_RETURN_IF_ERROR(bind_compressor(b, ap + "compressor", dims, a.ratio, dims.head_dim, false, a.compressor));
  }
  if (a.ratio == 4) {
    std::string ip = ap + "indexer.";
    MNEMO_ASSIGN(a.indexer.wq_b, b.matrix(ip + "wq_b", static_cast<int64_t>(dims.index_heads) * dims.index_dim, dims.q_lora));
    MNEMO_ASSIGN(a.indexer.weights_proj, b.matrix(ip + "weights_proj", dims.index_heads, d));
    MNEMO_RETURN_IF_ERROR(bind_compressor(b, ip + "compressor", dims, 4, dims.index_dim, true, a.indexer.compressor));
  }

  MoeParams& m = blk.moe;
  std::string fp = prefix + "ffn.";
  MNEMO_ASSIGN(m.gate, b.matrix(fp + "gate", dims.n_experts, d));
  if (layer < dims.n_hash_layers) {
    MNEMO_ASSIGN(m.tid2eid, b.expert_ids(fp + "gate.tid2eid", dims.vocab, dims.n_active, dims.n_experts));
  } else {
    MNEMO_ASSIGN(m.gate_bias, b.floats(fp + "gate.bias", {dims.n_experts}));
  }
  m.w1.resize(static_cast<size_t>(dims.n_experts));
  m.w2.resize(static_cast<size_t>(dims.n_experts));
  m.w3.resize(static_cast<size_t>(dims.n_experts));
  for (int e = 0; e < dims.n_experts; ++e) {
    std::string ep = fp + "experts." + std::to_string(e) + ".";
    MNEMO_ASSIGN(m.w1[e], b.matrix(ep + "w1", dims.moe_inter, d));
    MNEMO_ASSIGN(m.w2[e], b.matrix(ep + "w2", d, dims.moe_inter));
    MNEMO_ASSIGN(m.w3[e], b.matrix(ep + "w3", dims.moe_inter, d));
  }
  std::string sp = fp + "shared_experts.";
  MNEMO_ASSIGN(m.shared_w1, b.matrix(sp + "w1", dims.moe_inter, d));
  MNEMO_ASSIGN(m.shared_w2, b.matrix(sp + "w2", d, dims.moe_inter));
  MNEMO_ASSIGN(m.shared_w3, b.matrix(sp + "w3", dims.moe_inter, d));
  return Status::ok();
}

}  // namespace

Result<ModelParams> bind_params(const Dims& dims, const Weights& weights) {
  Binder b(weights);
  ModelParams p;
  const int64_t d = dims.d;
  MNEMO_ASSIGN(p.embed, b.matrix("embed", dims.vocab, d));
  if (p.embed.type != WeightType::kBF16 && p.embed.type != WeightType::kF32) {
    return Status::invalid_argument("embed.weight must be BF16 or F32");
  }
  MNEMO_ASSIGN(p.head, b.matrix("head", dims.vocab, d));
  MNEMO_ASSIGN(p.norm, b.floats("norm.weight", {d}));
  MNEMO_RETURN_IF_ERROR(bind_hc(b, "hc_head", dims, dims.hc, p.hc_head));
  p.layers.resize(static_cast<size_t>(dims.n_layers));
  for (int l = 0; l < dims.n_layers; ++l) {
    MNEMO_RETURN_IF_ERROR(bind_block(b, "layers." + std::to_string(l) + ".", dims, l, p.layers[l]));
  }
  p.mtp.resize(static_cast<size_t>(dims.n_mtp));
  for (int k = 0; k < dims.n_mtp; ++k) {
    std::string mp = "mtp." + std::to_string(k) + ".";
    MtpParams& m = p.mtp[k];
    // The MTP block never hash-routes: it is past num_hash_layers by construction.
    MNEMO_RETURN_IF_ERROR(bind_block(b, mp, dims, dims.n_layers + k, m.block));
    MNEMO_ASSIGN(m.e_proj, b.matrix(mp + "e_proj", d, d));
    MNEMO_ASSIGN(m.h_proj, b.matrix(mp + "h_proj", d, d));
    MNEMO_ASSIGN(m.enorm, b.floats(mp + "enorm.weight", {d}));
    MNEMO_ASSIGN(m.hnorm, b.floats(mp + "hnorm.weight", {d}));
    MNEMO_ASSIGN(m.norm, b.floats(mp + "norm.weight", {d}));
    MNEMO_RETURN_IF_ERROR(bind_hc(b, mp + "hc_head", dims, dims.hc, m.hc_head));
  }
  return p;
}

}  // namespace mnemo::inference::v4
