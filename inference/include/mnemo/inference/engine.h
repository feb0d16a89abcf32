#pragma once
// The Engine: a scheduler that runs many sequences continuously on one Model (DESIGN.md, "Engine").
// Requests join and leave at any step; each step is one Model::forward_batch holding every decoding
// sequence's next token and prefill chunks of the others; sampled tokens stream out per request.
// A request's tokens never depend on what else runs (DESIGN.md, "Determinism").
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/inference/model.h>
#include <mnemo/inference/sampler.h>
#include <mnemo/inference/tokenizer.h>

namespace mnemo::inference {

struct EngineOptions {
  // Rows of one forward_batch: decode tokens plus prefill chunks.
  int64_t max_batch_tokens = 512;
  // A prefill is cut into chunks of this size from the request's first token: a function of the
  // request alone, never of load. Clamped to max_batch_tokens.
  int64_t prefill_chunk = 256;
  // Requests running at once; later ones wait in submission order. Clamped so that every decoding
  // sequence and one prefill chunk always fit in a step (max_batch_tokens - prefill_chunk + 1).
  int64_t max_sequences = 64;
};

enum class FinishReason {
  kStop,         // a stop token was sampled (it was streamed and is the last generated token)
  kLength,       // max_new_tokens were generated
  kContextFull,  // the next token would be past max_position_embeddings
  kCancelled,    // cancel() or the Engine's destruction
  kError,        // the request was refused or failed; the Status says why
};
std::string_view finish_reason_name(FinishReason reason);  // "stop", "length", ...

using RequestId = uint64_t;

// A per-request hook on the logits row before sampling (constrained decoding: constraint.h). Runs
// on the scheduler thread; `remaining` counts the tokens the request may still generate, this one
// included (max_new_tokens and the context both bound it).
class LogitsProcessor {
 public:
  virtual ~LogitsProcessor() = default;
  virtual void apply(float* logits, int64_t vocab, int64_t remaining) = 0;
  // The sampled token; an error ends the request with kError.
  virtual Status accept(TokenId token) = 0;
};

// What on_done receives. The sequence holds every token fed to the model: the prompt and all
// generated tokens but the last one, which was sampled and never fed. A continuation therefore
// submits this sequence with a prompt that starts with that token (see Request::sequence).
struct RequestOutcome {
  RequestId id = 0;
  FinishReason reason = FinishReason::kError;
  Status status;                     // ok unless kError
  std::optional<Sequence> sequence;  // absent only when none was given and the request never ran
  std::string sampler_state;         // Sampler::export_state after the last draw
  std::vector<TokenId> generated;    // every streamed token, in order
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0;  // from joining a step to the first sampled token
  double decode_seconds = 0;   // from the first sampled token to the end
};

struct Request {
  // Tokens to feed, at least one: the last one's logits give the first generated token.
  std::vector<TokenId> prompt;
  // A sequence to continue (e.g. one rebuilt by Model::import_state, or a previous outcome's); it
  // must come from the Engine's model. Absent: a new sequence.
  std::optional<Sequence> sequence;
  SamplingParams sampling;
  // A previous RequestOutcome::sampler_state: the draws continue that stream instead of the seed's.
  std::string sampler_state;
  int64_t max_new_tokens = 256;  // 0: prefill the prompt only
  std::vector<TokenId> stop_tokens;
  // Whether on_token receives the logits row [vocab] that chose the token (else nullptr); with a
  // logits_processor it is the processed row.
  bool want_logits = false;
  // Optional: masks/adjusts each row before sampling and sees every sampled token.
  std::shared_ptr<LogitsProcessor> logits_processor;
  // Both callbacks run on the scheduler thread, between steps: keep them cheap (hand the work to
  // another thread). They may call submit() and cancel(), but never destroy the Engine.
  std::function<void(TokenId token, const float* logits)> on_token;
  std::function<void(RequestOutcome outcome)> on_done;  // exactly once per request
};

class Engine {
 public:
  Engine(const Model& model, EngineOptions options = {});
  // Stops the scheduler after its current step; every unfinished request ends with kCancelled.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request; it joins at the next step. Invalid requests (bad ids, sampling parameters, a
  // prompt past the context) end through on_done with kError, never here.
  RequestId submit(Request request);
  // Ends a request at the next step boundary with kCancelled; false when it has already finished
  // (or was never submitted).
  bool cancel(RequestId id);

  const EngineOptions& options() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnemo::inference
