#pragma once
// The OpenAI-compatible API answered by the embedded engine: GET /v1/models and
// POST /v1/chat/completions (docs/server.md). Prompts are rendered with the V4 chat codec and the
// output parsed back incrementally; tool_choice "required" and a named function are enforced by the
// budget-aware tool-call constraint, "none" bans the DSML token. The Engine's callbacks run on its
// scheduler thread and hand tokens to the connection's strand; no io thread waits for the model.
#include <cstdint>
#include <memory>
#include <string>

#include <mnemo/base/status.h>
#include <mnemo/inference/engine.h>
#include <mnemo/inference/model.h>
#include <mnemo/inference/tokenizer.h>
#include <mnemo/server/metrics.h>
#include <mnemo/server/router.h>

namespace mnemo::server {

struct OpenAiOptions {
  // The id /v1/models lists and requests name (the model directory's name).
  std::string model_id = "mnemo";
  inference::EngineOptions engine;
  // max_tokens when a request gives none (bounded by the context left).
  int64_t default_max_tokens = 1024;
  // Context in tokens, prompt and completion together; 0: the model's max_position_embeddings.
  int64_t max_context = 0;
};

class OpenAiApi {
 public:
  // `model` must outlive the API. Builds the engine and the constraint vocabulary.
  static Result<std::unique_ptr<OpenAiApi>> create(const inference::Model& model,
                                                   inference::Tokenizer tokenizer,
                                                   OpenAiOptions options,
                                                   std::shared_ptr<Metrics> metrics);
  // Stops the engine (unfinished requests end cancelled). Destroy it after Server::wait() and
  // before the Server: the engine's last callbacks post to the server's executor.
  ~OpenAiApi();

  // Adds GET /v1/models and POST /v1/chat/completions; the handlers reference this object.
  void add_routes(Router& router);

  struct Impl;

 private:
  explicit OpenAiApi(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnemo::server
