#include <mnemo/base/file.h>
#include <mnemo/base/json_text.h>
#include <mnemo/inference/model_config.h>

#include <simdjson.h>

#include <cmath>

namespace mnemo::inference {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

class Reader {
 public:
  Reader(object obj, std::string prefix) : obj_(obj), prefix_(std::move(prefix)) {}

  Status integer(std::string_view key, int64_t& out, bool required = true) {
    element e;
    if (obj_[key].get(e) || e.is_null()) return missing(key, required);
    int64_t i;
    double d;
    if (!e.get(i)) {
      out = i;
    } else if (!e.get(d) && std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      out = static_cast<int64_t>(d);  // "32.0" written by some exporters
    } else {
      return Status::invalid_argument(prefix_ + "'" + std::string(key) + "' must be an integer");
    }
    return Status::ok();
  }

  Status number(std::string_view key, double& out, bool required = true) {
    element e;
    if (obj_[key].get(e) || e.is_null()) return missing(key, required);
    if (e.get(out) || !std::isfinite(out)) {
      return Status::invalid_argument(prefix_ + "'" + std::string(key) + "' must be a number");
    }
    return Status::ok();
  }

  Status boolean(std::string_view key, bool& out, bool required = true) {
    element e;
    if (obj_[key].get(e) || e.is_null()) return missing(key, required);
    if (e.get(out))
      return Status::invalid_argument(prefix_ + "'" + std::string(key) + "' must be true or false");
    return Status::ok();
  }

  Status string(std::string_view key, std::string& out, bool required = true) {
    element e;
    if (obj_[key].get(e) || e.is_null()) return missing(key, required);
    std::string_view s;
    if (e.get(s))
      return Status::invalid_argument(prefix_ + "'" + std::string(key) + "' must be a string");
    out = std::string(s);
    return Status::ok();
  }

 private:
  Status missing(std::string_view key, bool required) {
    if (!required) return Status::ok();
    return Status::invalid_argument(prefix_ + "required key '" + std::string(key) + "' is missing");
  }

  object obj_;
  std::string prefix_;
};

Status bad(std::string_view key, const std::string& why) {
  return Status::invalid_argument("'" + std::string(key) + "' " + why);
}

Status positive(std::string_view key, int64_t v) {
  return v > 0 ? Status::ok() : bad(key, "must be positive, got " + std::to_string(v));
}

}  // namespace

std::string_view layer_kind_name(LayerKind kind) {
  switch (kind) {
    case LayerKind::kWindow:
      return "window";
    case LayerKind::kCsa:
      return "csa";
    case LayerKind::kHca:
      return "hca";
  }
  return "?";
}

LayerKind ModelConfig::layer_kind(int64_t layer) const {
  int r = compress_ratio(layer);
  return r == kCsaRatio ? LayerKind::kCsa : r == kHcaRatio ? LayerKind::kHca : LayerKind::kWindow;
}

int64_t ModelConfig::num_layers_of(LayerKind kind) const {
  int64_t n = 0;
  for (int64_t i = 0; i < num_hidden_layers; ++i) n += layer_kind(i) == kind;
  return n;
}

Status ModelConfig::validate() const {
  const std::pair<std::string_view, int64_t> positives[] = {
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"head_dim", head_dim},
      {"qk_rope_head_dim", qk_rope_head_dim},
      {"q_lora_rank", q_lora_rank},
      {"o_groups", o_groups},
      {"o_lora_rank", o_lora_rank},
      {"sliding_window", sliding_window},
      {"index_n_heads", index_n_heads},
      {"index_head_dim", index_head_dim},
      {"index_topk", index_topk},
      {"n_routed_experts", n_routed_experts},
      {"num_experts_per_tok", num_experts_per_tok},
      {"moe_intermediate_size", moe_intermediate_size},
      {"hc_mult", hc_mult},
      {"hc_sinkhorn_iters", hc_sinkhorn_iters},
      {"max_position_embeddings", max_position_embeddings},
  };
  for (const auto& [key, v] : positives) MNEMO_RETURN_IF_ERROR(positive(key, v));
  if (num_key_value_heads != 1) {
    return bad("num_key_value_heads", "must be 1 (one shared K=V vector per token), got " +
                                          std::to_string(num_key_value_heads));
  }
  if (qk_rope_head_dim > head_dim || qk_rope_head_dim % 2 != 0) {
    return bad("qk_rope_head_dim", "must be even and at most head_dim (" +
                                       std::to_string(head_dim) + "), got " +
                                       std::to_string(qk_rope_head_dim));
  }
  if (nope_head_dim() % 64 != 0) {
    return bad("head_dim", "minus qk_rope_head_dim must be a multiple of 64 (FP8 KV blocks), got " +
                               std::to_string(nope_head_dim()));
  }
  if (index_head_dim < qk_rope_head_dim || (index_head_dim & (index_head_dim - 1)) != 0 ||
      index_head_dim % 32) {
    return bad("index_head_dim",
               "must be a power of two, a multiple of 32 and at least qk_rope_head_dim, got " +
                   std::to_string(index_head_dim));
  }
  if (num_attention_heads % o_groups != 0) {
    return bad("o_groups", "(" + std::to_string(o_groups) + ") must divide num_attention_heads (" +
                               std::to_string(num_attention_heads) + ")");
  }
  if (num_nextn_predict_layers < 0) return bad("num_nextn_predict_layers", "must not be negative");
  int64_t want = num_hidden_layers + num_nextn_predict_layers;
  if (static_cast<int64_t>(compress_ratios.size()) != want) {
    return bad("compress_ratios",
               "has " + std::to_string(compress_ratios.size()) +
                   " entries, expected num_hidden_layers + num_nextn_predict_layers = " +
                   std::to_string(want));
  }
  for (size_t i = 0; i < compress_ratios.size(); ++i) {
    int r = compress_ratios[i];
    if (r != 0 && r != kCsaRatio && r != kHcaRatio) {
      return bad("compress_ratios", "[" + std::to_string(i) + "] is " + std::to_string(r) +
                                        "; only 0, 4 and 128 exist");
    }
    if (static_cast<int64_t>(i) >= num_hidden_layers && r != 0) {
      return bad("compress_ratios",
                 "[" + std::to_string(i) + "] is an MTP layer and must be 0 (window only)");
    }
  }
  if (n_shared_experts < 0) return bad("n_shared_experts", "must not be negative");
  if (num_experts_per_tok > n_routed_experts) {
    return bad("num_experts_per_tok", "(" + std::to_string(num_experts_per_tok) +
                                          ") exceeds n_routed_experts (" +
                                          std::to_string(n_routed_experts) + ")");
  }
  if (num_hash_layers < 0 || num_hash_layers > num_hidden_layers) {
    return bad("num_hash_layers",
               "must be between 0 and num_hidden_layers, got " + std::to_string(num_hash_layers));
  }
  if (scoring_func != "sqrtsoftplus") {
    return bad("scoring_func", "must be \"sqrtsoftplus\", got \"" + scoring_func + "\"");
  }
  const std::pair<std::string_view, double> positive_reals[] = {
      {"routed_scaling_factor", routed_scaling_factor},
      {"swiglu_limit", swiglu_limit},
      {"hc_eps", hc_eps},
      {"rope_theta", rope_theta},
      {"compress_rope_theta", compress_rope_theta},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_scaling.factor", rope_scaling.factor},
  };
  for (const auto& [key, v] : positive_reals) {
    if (!(v > 0)) return bad(key, "must be positive");
  }
  if (rope_scaling.type != "yarn")
    return bad("rope_scaling.type", "must be \"yarn\", got \"" + rope_scaling.type + "\"");
  MNEMO_RETURN_IF_ERROR(positive("rope_scaling.original_max_position_embeddings",
                                 rope_scaling.original_max_position_embeddings));
  if (!(rope_scaling.beta_fast > rope_scaling.beta_slow && rope_scaling.beta_slow > 0)) {
    return bad("rope_scaling.beta_fast", "must exceed beta_slow, and both be positive");
  }
  if (bos_token_id < 0 || bos_token_id >= vocab_size)
    return bad("bos_token_id", "is outside the vocabulary");
  if (eos_token_id < 0 || eos_token_id >= vocab_size)
    return bad("eos_token_id", "is outside the vocabulary");
  return Status::ok();
}

Result<ModelConfig> parse_model_config(std::string_view json, std::string_view where) {
  std::string prefix = std::string(where) + ": ";
  simdjson::dom::parser parser;
  element root;
  if (auto e = parser.parse(simdjson::padded_string(json)).get(root)) {
    return Status::invalid_argument(prefix + "invalid JSON: " + simdjson::error_message(e));
  }
  object obj;
  if (root.get(obj)) return Status::invalid_argument(prefix + "expected a JSON object");
  Reader r(obj, prefix);
  std::string model_type;
  MNEMO_RETURN_IF_ERROR(r.string("model_type", model_type));
  if (model_type != "deepseek_v4") {
    return Status::unsupported(prefix + "'model_type' is \"" + model_type +
                               "\"; only \"deepseek_v4\" is supported");
  }
  ModelConfig c;
  const std::pair<std::string_view, int64_t*> ints[] = {
      {"vocab_size", &c.vocab_size},
      {"hidden_size", &c.hidden_size},
      {"num_hidden_layers", &c.num_hidden_layers},
      {"num_attention_heads", &c.num_attention_heads},
      {"num_key_value_heads", &c.num_key_value_heads},
      {"head_dim", &c.head_dim},
      {"qk_rope_head_dim", &c.qk_rope_head_dim},
      {"q_lora_rank", &c.q_lora_rank},
      {"o_groups", &c.o_groups},
      {"o_lora_rank", &c.o_lora_rank},
      {"sliding_window", &c.sliding_window},
      {"index_n_heads", &c.index_n_heads},
      {"index_head_dim", &c.index_head_dim},
      {"index_topk", &c.index_topk},
      {"n_routed_experts", &c.n_routed_experts},
      {"n_shared_experts", &c.n_shared_experts},
      {"num_experts_per_tok", &c.num_experts_per_tok},
      {"moe_intermediate_size", &c.moe_intermediate_size},
      {"num_hash_layers", &c.num_hash_layers},
      {"hc_mult", &c.hc_mult},
      {"hc_sinkhorn_iters", &c.hc_sinkhorn_iters},
      {"max_position_embeddings", &c.max_position_embeddings},
      {"num_nextn_predict_layers", &c.num_nextn_predict_layers},
  };
  for (const auto& [key, dst] : ints) MNEMO_RETURN_IF_ERROR(r.integer(key, *dst));
  MNEMO_RETURN_IF_ERROR(r.integer("bos_token_id", c.bos_token_id, false));
  MNEMO_RETURN_IF_ERROR(r.integer("eos_token_id", c.eos_token_id, false));
  const std::pair<std::string_view, double*> reals[] = {
      {"routed_scaling_factor", &c.routed_scaling_factor},
      {"swiglu_limit", &c.swiglu_limit},
      {"hc_eps", &c.hc_eps},
      {"rope_theta", &c.rope_theta},
      {"compress_rope_theta", &c.compress_rope_theta},
      {"rms_norm_eps", &c.rms_norm_eps},
  };
  for (const auto& [key, dst] : reals) MNEMO_RETURN_IF_ERROR(r.number(key, *dst));
  MNEMO_RETURN_IF_ERROR(r.string("scoring_func", c.scoring_func));
  MNEMO_RETURN_IF_ERROR(r.boolean("norm_topk_prob", c.norm_topk_prob));

  simdjson::dom::array ratios;
  if (obj["compress_ratios"].get(ratios)) {
    return Status::invalid_argument(prefix +
                                    "required key 'compress_ratios' is missing or not an array");
  }
  for (element e : ratios) {
    int64_t v;
    if (e.get(v) || v < 0 || v > (1 << 20)) {
      return Status::invalid_argument(prefix + "'compress_ratios' entries must be 0, 4 or 128");
    }
    c.compress_ratios.push_back(static_cast<int>(v));
  }
  object scaling;
  if (obj["rope_scaling"].get(scaling)) {
    return Status::invalid_argument(prefix +
                                    "required key 'rope_scaling' is missing or not an object");
  }
  Reader rs(scaling, prefix + "rope_scaling: ");
  std::string type;
  // HF configs spell it "type" or "rope_type".
  if (!rs.string("type", type).is_ok() || type.empty())
    MNEMO_RETURN_IF_ERROR(rs.string("rope_type", type));
  c.rope_scaling.type = type;
  MNEMO_RETURN_IF_ERROR(rs.number("factor", c.rope_scaling.factor));
  MNEMO_RETURN_IF_ERROR(rs.integer("original_max_position_embeddings",
                                   c.rope_scaling.original_max_position_embeddings));
  MNEMO_RETURN_IF_ERROR(rs.number("beta_fast", c.rope_scaling.beta_fast));
  MNEMO_RETURN_IF_ERROR(rs.number("beta_slow", c.rope_scaling.beta_slow));

  if (Status s = c.validate(); !s.is_ok()) return s.with_context(where);
  return c;
}

Result<ModelConfig> load_model_config(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.status();
  return parse_model_config(*text, path);
}

std::string ModelConfig::to_json() const {
  std::string o =
      "{\n  \"architectures\": [\"DeepseekV4ForCausalLM\"],\n  \"model_type\": \"deepseek_v4\"";
  auto i = [&](std::string_view k, int64_t v) {
    o += ",\n  \"" + std::string(k) + "\": " + std::to_string(v);
  };
  auto d = [&](std::string_view k, double v) {
    o += ",\n  \"" + std::string(k) + "\": " + json::python_float_repr(v);
  };
  i("vocab_size", vocab_size);
  i("hidden_size", hidden_size);
  i("num_hidden_layers", num_hidden_layers);
  i("num_attention_heads", num_attention_heads);
  i("num_key_value_heads", num_key_value_heads);
  i("head_dim", head_dim);
  i("qk_rope_head_dim", qk_rope_head_dim);
  i("q_lora_rank", q_lora_rank);
  i("o_groups", o_groups);
  i("o_lora_rank", o_lora_rank);
  i("sliding_window", sliding_window);
  o += ",\n  \"compress_ratios\": [";
  for (size_t k = 0; k < compress_ratios.size(); ++k)
    o += (k ? ", " : "") + std::to_string(compress_ratios[k]);
  o += "]";
  i("index_n_heads", index_n_heads);
  i("index_head_dim", index_head_dim);
  i("index_topk", index_topk);
  i("n_routed_experts", n_routed_experts);
  i("n_shared_experts", n_shared_experts);
  i("num_experts_per_tok", num_experts_per_tok);
  i("moe_intermediate_size", moe_intermediate_size);
  i("num_hash_layers", num_hash_layers);
  o += ",\n  \"scoring_func\": ";
  json::append_string(o, scoring_func);
  o += ",\n  \"topk_method\": \"noaux_tc\"";
  d("routed_scaling_factor", routed_scaling_factor);
  o += std::string(",\n  \"norm_topk_prob\": ") + (norm_topk_prob ? "true" : "false");
  d("swiglu_limit", swiglu_limit);
  o += ",\n  \"hidden_act\": \"silu\"";
  i("hc_mult", hc_mult);
  i("hc_sinkhorn_iters", hc_sinkhorn_iters);
  d("hc_eps", hc_eps);
  d("rope_theta", rope_theta);
  d("compress_rope_theta", compress_rope_theta);
  o += ",\n  \"rope_scaling\": {\"type\": ";
  json::append_string(o, rope_scaling.type);
  o += ", \"factor\": " + json::python_float_repr(rope_scaling.factor) +
       ", \"original_max_position_embeddings\": " +
       std::to_string(rope_scaling.original_max_position_embeddings) +
       ", \"beta_fast\": " + json::python_float_repr(rope_scaling.beta_fast) +
       ", \"beta_slow\": " + json::python_float_repr(rope_scaling.beta_slow) + "}";
  d("rms_norm_eps", rms_norm_eps);
  i("max_position_embeddings", max_position_embeddings);
  i("num_nextn_predict_layers", num_nextn_predict_layers);
  i("bos_token_id", bos_token_id);
  i("eos_token_id", eos_token_id);
  o += ",\n  \"tie_word_embeddings\": false,\n  \"torch_dtype\": \"bfloat16\"\n}\n";
  return o;
}

}  // namespace mnemo::inference
