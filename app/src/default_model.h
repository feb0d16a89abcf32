#pragma once
// The default embedded model (DESIGN.md, "Where things live"): MNEMO_HOME/models/tiny, created on
// first use.
#include <cstdint>
#include <functional>
#include <string>

#include <mnemo/base/status.h>
#include <mnemo/inference/model.h>
#include <mnemo/inference/tokenizer.h>

#include <memory>

namespace mnemo::app {

// third_party/deepseek_v3_tokenizer of the mnemo source tree, found from $MNEMO_SOURCE_DIR, the
// executable's location (and the source of the build tree it sits in) or the current directory.
Result<std::string> find_v3_tokenizer_dir();

// A progress callback for model init: a percentage line rewritten on stderr when it is a TTY,
// nothing otherwise. `label` names what is written.
std::function<void(uint64_t, uint64_t)> stderr_progress(const std::string& label);

// The default model's directory, created once (preset tiny, seed 0, bf16) with a line on stderr.
Result<std::string> ensure_default_model();

// `dir` when given, else the default model's directory (created on first use).
Result<std::string> model_dir_or_default(const std::string& dir);

// A model directory (the default model when `dir` is empty) loaded with its tokenizer.
struct LoadedModel {
  std::string dir;
  std::unique_ptr<inference::Tokenizer> tokenizer;
  std::unique_ptr<inference::Model> model;
};
Result<LoadedModel> load_model(const std::string& dir, inference::Precision precision);

}  // namespace mnemo::app
