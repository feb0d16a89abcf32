// Writing a synthetic checkpoint directory: presets, weights streamed tensor by tensor, tokenizer
// files.
#include <mnemo/base/file.h>
#include <mnemo/base/json_text.h>
#include <mnemo/inference/model_init.h>
#include <mnemo/inference/safetensors.h>
#include <mnemo/inference/special_tokens.h>

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unordered_set>

#include "model_init_values.h"

namespace mnemo::inference {
namespace fs = std::filesystem;
namespace {

// Generation batches stay below this many bytes of output, so memory stays bounded for any model.
constexpr size_t kBatchBytes = size_t{64} << 20;

ModelConfig golden_tiny_architecture() {
  ModelConfig c;
  c.vocab_size = 4096;
  c.hidden_size = 128;
  c.num_hidden_layers = 6;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 1;
  c.head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.q_lora_rank = 128;
  c.o_groups = 2;
  c.o_lora_rank = 64;
  c.sliding_window = 16;
  c.compress_ratios = {0, 0, 4, 128, 4, 128, 0};
  c.index_n_heads = 16;
  c.index_head_dim = 128;
  c.index_topk = 8;
  c.n_routed_experts = 16;
  c.n_shared_experts = 1;
  c.num_experts_per_tok = 4;
  c.moe_intermediate_size = 128;
  c.num_hash_layers = 3;
  c.scoring_func = "sqrtsoftplus";
  c.routed_scaling_factor = 1.5;
  c.norm_topk_prob = true;
  c.swiglu_limit = 10.0;
  c.hc_mult = 4;
  c.hc_sinkhorn_iters = 20;
  c.hc_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.compress_rope_theta = 160000.0;
  c.rope_scaling = {"yarn", 16.0, 65536, 32, 1};
  c.rms_norm_eps = 1e-6;
  c.max_position_embeddings = 1024;
  c.num_nextn_predict_layers = 1;
  return c;
}

// Runs fn(i) for i in [0, count) on up to `threads` threads.
template <typename Fn>
void parallel_for(int64_t count, int threads, Fn fn) {
  int n = static_cast<int>(std::min<int64_t>(threads, count));
  if (n <= 1) {
    for (int64_t i = 0; i < count; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i = next++; i < count; i = next++) fn(i);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

Status write_text(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) return Status::io_error(path.string() + ": write failed");
  return Status::ok();
}

Status rename_into_place(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec)
    return Status::io_error("cannot rename " + from.string() + " to " + to.string() + ": " +
                            ec.message());
  return Status::ok();
}

}  // namespace

Result<ModelPreset> parse_model_preset(std::string_view name) {
  if (name == "tiny") return ModelPreset::kTiny;
  if (name == "small") return ModelPreset::kSmall;
  return Status::invalid_argument("unknown preset '" + std::string(name) + "' (use tiny or small)");
}

std::string_view model_preset_name(ModelPreset preset) {
  return preset == ModelPreset::kTiny ? "tiny" : "small";
}

ModelConfig preset_config(ModelPreset preset) {
  ModelConfig c = golden_tiny_architecture();
  c.vocab_size = 129280;
  c.max_position_embeddings = 1048576;
  if (preset == ModelPreset::kTiny) return c;
  // The benchmark model: the real attention geometry (head_dim 512, window 128, indexer 64x128,
  // top-512) at a small width, 64 experts with 6 active, every layer kind, hash-routed first
  // layers, one MTP block.
  c.hidden_size = 1024;
  c.num_hidden_layers = 6;
  c.num_attention_heads = 16;
  c.head_dim = 512;
  c.q_lora_rank = 512;
  c.o_groups = 4;
  c.o_lora_rank = 256;
  c.sliding_window = 128;
  c.compress_ratios = {0, 4, 128, 4, 128, 4, 0};
  c.index_n_heads = 64;
  c.index_head_dim = 128;
  c.index_topk = 512;
  c.n_routed_experts = 64;
  c.num_experts_per_tok = 6;
  c.moe_intermediate_size = 384;
  c.num_hash_layers = 2;
  return c;
}

Status write_synthetic_weights(const std::string& path, const ModelConfig& config,
                               const InitOptions& options) {
  MNEMO_RETURN_IF_ERROR(config.validate());
  if (options.format == WeightFormat::kFp8 && (config.hidden_size % kFp4BlockSize != 0 ||
                                               config.moe_intermediate_size % kFp4BlockSize != 0)) {
    return Status::invalid_argument(
        "fp8 weights need hidden_size and moe_intermediate_size divisible by 32");
  }
  std::vector<TensorSpec> specs = expected_tensors(config, options.format);
  std::vector<TensorDecl> decls;
  decls.reserve(specs.size());
  for (const TensorSpec& s : specs) decls.push_back({s.name, s.dtype, s.shape});
  auto writer = SafetensorsWriter::create(
      path, std::move(decls),
      {{"format", "pt"},
       {"mnemo_init_seed", std::to_string(options.seed)},
       {"mnemo_weights", std::string(weight_format_name(options.format))}});
  if (!writer) return writer.status();
  const int threads =
      options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  const uint64_t total = writer->data_bytes();
  uint64_t done = 0;
  std::vector<uint8_t> buffer;
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorSpec& spec = specs[i];
    if (spec.storage == Storage::kScale) continue;  // written right after its matrix
    std::vector<uint8_t> scale;
    bool has_scale = i + 1 < specs.size() && specs[i + 1].storage == Storage::kScale;
    if (has_scale) scale.assign(writer->tensor_bytes(i + 1), 0);
    const int64_t rows = init::logical_rows(spec);
    const size_t bytes = writer->tensor_bytes(i);
    if (rows > 0 && bytes > 0) {
      const size_t row_bytes = bytes / static_cast<size_t>(rows);
      const int64_t groups = (rows + init::kInitGroupRows - 1) / init::kInitGroupRows;
      const size_t group_bytes = row_bytes * init::kInitGroupRows;
      const int64_t per_batch =
          std::max<int64_t>(1, static_cast<int64_t>(kBatchBytes / group_bytes));
      for (int64_t g0 = 0; g0 < groups; g0 += per_batch) {
        const int64_t g1 = std::min(groups, g0 + per_batch);
        const int64_t r1 = std::min(rows, g1 * init::kInitGroupRows);
        const size_t batch = static_cast<size_t>(r1 - g0 * init::kInitGroupRows) * row_bytes;
        buffer.resize(batch);
        parallel_for(g1 - g0, batch >= (size_t{1} << 20) ? threads : 1, [&](int64_t k) {
          init::encode_group(spec, config, options.seed, g0 + k,
                             buffer.data() + static_cast<size_t>(k) * group_bytes, scale.data());
        });
        MNEMO_RETURN_IF_ERROR(writer->write(buffer.data(), batch));
        done += batch;
        if (options.progress) options.progress(done, total);
      }
    }
    if (has_scale) {
      MNEMO_RETURN_IF_ERROR(writer->write(scale.data(), scale.size()));
      done += scale.size();
    }
  }
  MNEMO_RETURN_IF_ERROR(writer->finish());
  if (options.progress) options.progress(total, total);
  return Status::ok();
}

Result<std::string> v4_tokenizer_json(std::string_view v3_tokenizer_json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto e = parser.parse(simdjson::padded_string(v3_tokenizer_json)).get(root)) {
    return Status::invalid_argument(std::string("V3 tokenizer.json: invalid JSON: ") +
                                    simdjson::error_message(e));
  }
  simdjson::dom::object obj;
  if (root.get(obj)) return Status::invalid_argument("V3 tokenizer.json: not a JSON object");
  std::string out = "{";
  bool first = true, added_done = false;
  auto append_added = [&](simdjson::dom::array existing) -> Status {
    out += "[";
    std::unordered_set<int64_t> ids;
    std::unordered_set<std::string_view> contents;
    bool first_entry = true;
    for (simdjson::dom::element a : existing) {
      int64_t id;
      std::string_view content;
      if (!a["id"].get(id)) ids.insert(id);
      if (!a["content"].get(content)) contents.insert(content);
      if (!first_entry) out += ",";
      first_entry = false;
      out += simdjson::to_string(a);
    }
    for (const tokens::SpecialToken& t : tokens::kV4AddedTokens) {
      if (ids.count(t.id) || contents.count(t.text)) {
        return Status::invalid_argument("V3 tokenizer.json already has id " + std::to_string(t.id) +
                                        " or token " + std::string(t.text) +
                                        "; is it already a V4 tokenizer?");
      }
      if (!first_entry) out += ",";
      first_entry = false;
      out += "{\"id\":" + std::to_string(t.id) + ",\"content\":";
      json::append_string(out, t.text);
      out +=
          ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
          "\"special\":true}";
    }
    out += "]";
    return Status::ok();
  };
  for (auto [key, value] : obj) {
    if (!first) out += ",";
    first = false;
    json::append_string(out, key);
    out += ":";
    simdjson::dom::array arr;
    if (key == "added_tokens" && !value.get(arr)) {
      MNEMO_RETURN_IF_ERROR(append_added(arr));
      added_done = true;
    } else {
      out += simdjson::to_string(value);
    }
  }
  if (!added_done) return Status::invalid_argument("V3 tokenizer.json has no added_tokens array");
  out += "}\n";
  return out;
}

Status init_model(const std::string& dir, const ModelConfig& config, const InitOptions& options,
                  const std::string& v3_tokenizer_dir) {
  MNEMO_RETURN_IF_ERROR(config.validate());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error("cannot create " + dir + ": " + ec.message());
  const fs::path d(dir);
  auto v3 = read_file((fs::path(v3_tokenizer_dir) / "tokenizer.json").string());
  if (!v3) return v3.status();
  auto v3_config = read_file((fs::path(v3_tokenizer_dir) / "tokenizer_config.json").string());
  if (!v3_config) return v3_config.status();
  auto v4 = v4_tokenizer_json(*v3);
  if (!v4) return v4.status();

  const std::string suffix = ".partial";
  MNEMO_RETURN_IF_ERROR(
      write_synthetic_weights((d / "model.safetensors").string() + suffix, config, options));
  MNEMO_RETURN_IF_ERROR(write_text(d / ("tokenizer.json" + suffix), *v4));
  MNEMO_RETURN_IF_ERROR(write_text(d / ("tokenizer_config.json" + suffix), *v3_config));
  MNEMO_RETURN_IF_ERROR(write_text(d / ("config.json" + suffix), config.to_json()));
  // config.json last: a directory with a config.json is complete.
  for (const char* name :
       {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"}) {
    MNEMO_RETURN_IF_ERROR(rename_into_place(d / (std::string(name) + suffix), d / name));
  }
  return Status::ok();
}

}  // namespace mnemo::inference
