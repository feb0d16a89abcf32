#include "embedded_model.h"

#include <mnemo/inference/turn_mask.h>

#include <mnemo/inference/special_tokens.h>

namespace mnemo::agent::internal {

Result<std::unique_ptr<EmbeddedModel>> EmbeddedModel::load(
    const std::string& dir, inference::Precision precision,
    const inference::EngineOptions& engine_options) {
  auto m = std::make_unique<EmbeddedModel>();
  m->dir = dir;
  m->precision = precision;
  auto tokenizer = inference::Tokenizer::load(dir + "/tokenizer.json");
  if (!tokenizer) return tokenizer.status();
  m->tokenizer = std::make_unique<inference::Tokenizer>(std::move(tokenizer).value());
  auto model = inference::Model::load(dir, {precision});
  if (!model) return model.status();
  m->model = std::move(model).value();
  auto vocab = inference::ConstraintVocabulary::build(*m->tokenizer);
  if (!vocab) return Status::invalid_argument(dir + ": " + vocab.status().message());
  m->vocab = std::move(vocab).value();
  m->eos = static_cast<inference::TokenId>(m->model->config().eos_token_id);
  if (auto d = m->tokenizer->token_id(inference::tokens::kDsml)) m->dsml = *d;
  m->banned = std::make_shared<const std::vector<inference::TokenId>>(
      inference::tokens_banned_in_turns(*m->tokenizer, m->model->config().vocab_size,
                                        inference::ThinkingMode::kChat, m->eos));
  m->engine = std::make_unique<inference::Engine>(*m->model, engine_options);
  return m;
}

// The Engine goes first: its scheduler still reads the model.
EmbeddedModel::~EmbeddedModel() { engine.reset(); }

}  // namespace mnemo::agent::internal
