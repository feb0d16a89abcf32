// A model turn on a remote OpenAI-compatible server (docs/remote.md): the conversation goes out as
// OpenAI messages with the job's tools and tool_choice; the blocking libcurl call runs on the
// runtime's remote pool, its streamed pieces come back to the job's executor as live events.
// Arguments that fail a tool's schema are not trusted: the registry turns them into an error
// result.
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cstdlib>

#include "event_payloads.h"
#include "session.h"

namespace mnemo::agent::internal {

namespace asio = boost::asio;
namespace json = boost::json;

Status Session::setup_remote() {
  const RemoteModelSpec& spec = state_.spec.model.remote;
  inference::RemoteEndpoint endpoint;
  endpoint.base_url = spec.base_url;
  endpoint.model = spec.model;
  if (!spec.api_key_env.empty()) {
    const char* key = std::getenv(spec.api_key_env.c_str());
    if (!key || !*key) {
      return Status::invalid_argument("model.remote.api_key_env names " + spec.api_key_env +
                                      ", which is not set in this process's environment");
    }
    endpoint.api_key = key;
  }
  remote_ = std::make_unique<inference::RemoteChatClient>(std::move(endpoint));
  return Status::ok();
}

namespace {

std::string tool_choice_json(const ToolChoice& choice) {
  switch (choice.kind) {
    case ToolChoiceKind::kAuto:
      return "\"auto\"";
    case ToolChoiceKind::kRequired:
      return "\"required\"";
    case ToolChoiceKind::kNone:
      return "\"none\"";
    case ToolChoiceKind::kTool:
      return json::serialize(
          json::object{{"type", "function"}, {"function", json::object{{"name", choice.tool}}}});
  }
  return "\"auto\"";
}

}  // namespace

asio::awaitable<Status> Session::remote_turn() {
  step_start_ = std::chrono::steady_clock::now();
  step_stats_ = StepStats{};
  step_stats_.step = state_.steps + 1;
  const LimitsSpec& limits = state_.spec.limits;
  const int64_t budget =
      std::min<int64_t>(static_cast<int64_t>(limits.max_tokens - state_.run_generated_tokens),
                        static_cast<int64_t>(limits.max_turn_tokens));
  inference::RemoteChatRequest request;
  request.messages_json = messages_json(state_);
  if (!registry_.names().empty()) {
    request.tools_json = registry_.tools_json();
    request.tool_choice_json = tool_choice_json(state_.spec.tool_choice);
  }
  request.temperature = state_.spec.sampling.temperature;
  request.top_p = state_.spec.sampling.top_p;
  request.seed = state_.origin.seed;
  request.max_tokens = budget;

  auto ex = co_await asio::this_coro::executor;
  remote_cancel_ = std::make_shared<std::atomic<bool>>(stop_ != Stop::kNone);
  auto cancel = remote_cancel_;
  call_names_.clear();
  auto forward = [this, ex](const inference::ChatEvent& e) {
    // From the pool thread to the job's executor, where live() may run.
    asio::post(ex, [this, e] { live_from_chat(e); });
  };
  // Owned by the call: it may outlive this frame when the process stops mid-call.
  auto client = std::make_shared<inference::RemoteChatClient>(*remote_);
  auto req = std::make_shared<inference::RemoteChatRequest>(std::move(request));
  auto op = run_on_pool<Result<inference::RemoteChatResult>>(
      rt_.remote_pool,
      [client, req, forward, cancel]() { return client->complete(*req, forward, cancel.get()); });
  Result<inference::RemoteChatResult> result = co_await std::move(op);
  remote_cancel_.reset();
  step_stats_.model_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - step_start_)
          .count();

  TurnOutput out;
  if (!result) {
    if (inference::is_remote_cancellation(result.status())) co_return Status::ok();
    out.reason = inference::FinishReason::kError;
    out.status = result.status();
    auto c =
        commit({error_event("model: " + out.status.message()),
                finished_event("error", state_.answer, state_.steps, state_.generated_tokens, "")},
               false);
    co_return co_await std::move(c);
  }
  out.message = std::move(result->message);
  out.well_formed = true;
  out.completion_tokens = result->usage.completion_tokens;
  out.prompt_tokens = result->usage.prompt_tokens;
  step_stats_.generated_tokens = out.completion_tokens;
  out.reason = result->finish_reason == "length" ? inference::FinishReason::kLength
                                                 : inference::FinishReason::kStop;
  if (state_.spec.tool_choice.kind == ToolChoiceKind::kNone) out.message.tool_calls.clear();
  auto c = commit_turn(out, budget);
  co_return co_await std::move(c);
}

}  // namespace mnemo::agent::internal
