#pragma once
// An embedded model as the runtime holds it: weights, tokenizer, the shared Engine that batches
// every job's turns, and the constraint vocabulary for forced tool calls. Loaded once per (dir,
// precision).
#include <mnemo/base/status.h>
#include <mnemo/inference/constraint.h>
#include <mnemo/inference/engine.h>
#include <mnemo/inference/model.h>
#include <mnemo/inference/tokenizer.h>

#include <memory>
#include <string>

namespace mnemo::agent::internal {

struct EmbeddedModel {
  std::string dir;
  inference::Precision precision = inference::Precision::kF32;
  std::unique_ptr<inference::Model> model;
  std::unique_ptr<inference::Tokenizer> tokenizer;
  std::unique_ptr<inference::Engine> engine;
  std::shared_ptr<const inference::ConstraintVocabulary> vocab;
  inference::TokenId eos = 0;
  inference::TokenId dsml = -1;  // the ｜DSML｜ token (-1 when the tokenizer lacks it)
  // What no turn may sample (inference/turn_mask.h); agent turns are in chat mode.
  std::shared_ptr<const std::vector<inference::TokenId>> banned;

  static Result<std::unique_ptr<EmbeddedModel>> load(
      const std::string& dir, inference::Precision precision,
      const inference::EngineOptions& engine_options);
  ~EmbeddedModel();
};

}  // namespace mnemo::agent::internal
