#pragma once
// The JSON payloads of the agent's durable events (docs/agent.md lists every field). Builders here,
// the reader in job_state.cc.
#include <mnemo/agent/job_state.h>
#include <mnemo/inference/chat.h>
#include <mnemo/memory/events.h>
#include <mnemo/tools/tool.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <span>
#include <string>
#include <string_view>

namespace mnemo::agent::internal {

boost::json::array token_array(std::span<const inference::TokenId> tokens);
std::string to_hex(std::string_view bytes);
Result<std::string> from_hex(std::string_view hex);

memory::NewEvent session_created_event(const JobOrigin& origin, std::string_view name);
// drop_tokens: transcript tokens the input replaces (see apply_input).
memory::NewEvent input_event(std::string_view instructions, std::string_view content,
                             std::span<const inference::TokenId> tokens, size_t drop_tokens = 0);
struct TurnRecord {
  uint32_t step = 0;
  inference::AssistantMessage message;  // tool calls carry their ids
  std::string finish;                   // stop, length, context, cancelled, error
  std::span<const inference::TokenId> tokens;
  std::string sampler_state;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};
memory::NewEvent message_event(const TurnRecord& turn);
memory::NewEvent intent_event(uint32_t step, const CallState& call);
memory::NewEvent approval_required_event(const CallState& call, std::string_view tool_description);
memory::NewEvent approval_event(std::string_view call_id, bool approve, std::string_view by);
struct ResultRecord {
  const CallState* call = nullptr;
  tools::ToolResult result;
  bool outcome_unknown = false;
  bool denied = false;
  double elapsed_ms = 0;
  // The transcript tokens the step's results add (on the step's last result only).
  std::span<const inference::TokenId> tokens;
  bool has_tokens = false;
};
memory::NewEvent result_event(const ResultRecord& record);
// How a resume rebuilt the sequence: from a KV snapshot, or by prefilling the transcript (why).
struct ResumeRecord {
  bool from_snapshot = false;
  uint64_t snapshot = 0;      // the snapshot's number, when from one
  int64_t position = 0;       // tokens the restored state holds (0 after a prefill fallback)
  int64_t tokens_prefilled = 0;  // transcript tokens after that position, fed as prefill
  std::string reason;         // why the snapshot could not be used, when prefilled
};
memory::NewEvent resumed_event(const ResumeRecord& record);
// A failed run continues from its last committed step (`mnemo resume` of a failed job): `error` is
// the failure it retries after. The log keeps that failure's events.
memory::NewEvent retried_event(std::string_view error);
memory::NewEvent limit_event(std::string_view reason, std::string_view detail);
memory::NewEvent error_event(std::string_view message);
memory::NewEvent finished_event(std::string_view reason, std::string_view answer, uint32_t steps,
                                uint64_t generated_tokens, std::string_view limit);

}  // namespace mnemo::agent::internal
