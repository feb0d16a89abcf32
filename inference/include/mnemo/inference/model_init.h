#pragma once
// `mnemo model init`: deterministic synthetic DeepSeek-V4 checkpoints (tests, benchmarks, the
// default embedded model), with the real DeepSeek tokenizer.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <mnemo/base/status.h>
#include <mnemo/inference/model_config.h>
#include <mnemo/inference/model_tensors.h>

namespace mnemo::inference {

// kTiny: golden-tiny's architecture with the real vocabulary and a 1M-token context (the default
// embedded model). kSmall: the benchmark model (docs/models.md).
enum class ModelPreset { kTiny, kSmall };
Result<ModelPreset> parse_model_preset(std::string_view name);
std::string_view model_preset_name(ModelPreset preset);
ModelConfig preset_config(ModelPreset preset);

struct InitOptions {
  uint64_t seed = 0;
  WeightFormat format = WeightFormat::kBf16;
  // Worker threads for generating values; 0 = all cores. The output does not depend on it.
  int threads = 0;
  // Called now and then with (bytes of tensor data written, total bytes); may be empty.
  std::function<void(uint64_t, uint64_t)> progress;
};

// Writes config.json, model.safetensors, tokenizer.json (the V3 tokenizer of `v3_tokenizer_dir`
// with the V4 added tokens) and tokenizer_config.json into `dir` (created when missing). Files are
// written under temporary names and renamed at the end, so an interrupted run never leaves a model
// that looks complete.
Status init_model(const std::string& dir, const ModelConfig& config, const InitOptions& options,
                  const std::string& v3_tokenizer_dir);

// The V4 tokenizer.json text: the V3 one with tokens::kV4AddedTokens appended to added_tokens.
Result<std::string> v4_tokenizer_json(std::string_view v3_tokenizer_json);

// Writes model.safetensors only (no tokenizer), as init_model does.
Status write_synthetic_weights(const std::string& path, const ModelConfig& config,
                               const InitOptions& options);

}  // namespace mnemo::inference
