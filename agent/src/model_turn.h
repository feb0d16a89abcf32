#pragma once
// One assistant turn on the embedded engine: the request joins the shared Engine, sampled tokens
// come back through an Asio channel (the scheduler thread sends, the job's coroutine receives, no
// thread blocks), are detokenised and parsed as they stream.
#include <mnemo/inference/chat.h>
#include <mnemo/inference/engine.h>

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "embedded_model.h"

namespace mnemo::agent::internal {

struct TurnOptions {
  std::vector<inference::TokenId> prompt;  // the tokens not yet fed
  std::optional<inference::Sequence> sequence;
  inference::SamplingParams sampling;
  std::string sampler_state;
  int64_t max_new_tokens = 0;
  std::shared_ptr<inference::LogitsProcessor> processor;
  std::function<void(const inference::ChatEvent&)> on_event;  // parser events as they stream
  std::function<void(inference::RequestId)> on_submit;        // the request id, for cancellation
};

struct TurnOutput {
  inference::FinishReason reason = inference::FinishReason::kError;
  Status status;
  std::optional<inference::Sequence> sequence;
  std::string sampler_state;
  std::vector<inference::TokenId> generated;
  inference::AssistantMessage
      message;  // parsed; when the text was not a well-formed turn, its raw text
  bool well_formed = false;
  std::string parse_error;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens =
      0;  // generated.size() on the embedded engine; the server's count remotely
};

boost::asio::awaitable<TurnOutput> run_embedded_turn(EmbeddedModel& model, TurnOptions options);

}  // namespace mnemo::agent::internal
