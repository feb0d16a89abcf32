#pragma once
// A job's state as its event log tells it (DESIGN.md, "One event vocabulary"). The log is the only
// truth: a running session and a resumed one both rebuild from it, and `mnemo jobs show` reads it.
#include <mnemo/agent/job_spec.h>
#include <mnemo/base/status.h>
#include <mnemo/inference/chat.h>
#include <mnemo/inference/tokenizer.h>
#include <mnemo/memory/events.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mnemo::agent {

// Where a job stands. kInterrupted: no run.finished yet and nothing is waiting (a crash, Ctrl-C or
// a process that is still running it).
enum class JobStatus { kInterrupted, kWaitingApproval, kCompleted, kLimit, kCancelled, kFailed };
std::string_view job_status_name(JobStatus status);  // "interrupted", "waiting_approval", ...

// What session.created records: everything a resume needs to rebuild the job exactly.
struct JobOrigin {
  std::string spec_yaml;  // the job file's text, parsed again on resume
  std::string spec_file;  // where it came from (labels errors)
  std::map<std::string, std::string> inputs;
  uint64_t seed = 0;  // the sampling seed (drawn once when the job gives none)
  std::string workspace;
  std::string model_dir;  // embedded: the resolved directory; remote: empty
  std::string fingerprint;
  // Created by the operator (the CLI, or its channel to `mnemo serve`): no tenant policy applies,
  // now or when it is loaded again.
  bool operator_job = false;
};

// One tool call of an assistant turn and how far it got.
struct CallState {
  std::string id;
  std::string name;
  std::string arguments;
  bool approval_requested = false;  // tool.approval_required committed
  std::optional<bool> approved;     // tool.approval's decision
  bool intent = false;              // tool.intent committed: it may have started
  bool result = false;              // tool.result committed
};

struct JobState {
  std::string id;
  JobOrigin origin;
  JobSpec spec;
  int64_t created_unix_ms = 0;
  uint64_t last_seq = 0;
  int64_t last_snapshot_position = 0;  // of the newest step.committed
  // The conversation so far (system, user, assistant turns, tool results), as rendered into the
  // prompt.
  std::vector<inference::ChatMessage> messages;
  // Every token id of the transcript in order: prompt, generated turns, tool-result deltas.
  std::vector<inference::TokenId> transcript;
  // Transcript tokens added after the last assistant turn's own (its tool results' rendering).
  size_t tokens_after_turn = 0;
  uint32_t steps = 0;             // assistant turns
  uint64_t generated_tokens = 0;  // over the whole job
  // The same since the last input.message: the limits count per run (a session's next input
  // starts a new run).
  uint32_t run_steps = 0;
  uint64_t run_generated_tokens = 0;
  uint32_t inputs = 0;           // input.message events
  std::string sampler_state;     // after the last turn (raw bytes)
  std::vector<CallState> calls;  // of the last assistant turn
  bool finished = false;
  std::string finish_reason;  // run.finished's reason: completed, limit, cancelled, error
  std::string limit;          // steps, tokens, time, context (when a limit stopped it)
  std::string error;          // the last error event's message
  std::string answer;         // the last assistant turn's content
  std::string resumed_from;   // the last session.resumed's `from`: snapshot or prefill

  JobStatus status() const;
  // A run that ended on an error (a model or network failure): resume retries it from the last
  // committed step.
  bool retryable() const { return finished && finish_reason == "error"; }
  // The calls of the last turn that still need a result.
  bool calls_settled() const;
};

// Rebuilds a job from its events (in seq order, session.created first). Errors name the seq and
// field of a payload that does not parse.
Result<JobState> replay_job(std::string_view id, std::span<const memory::Event> events);

// Applies one more event to a replayed state (what a running session does after each commit, so
// that its state is always the replayed one).
Status apply_event(JobState& state, const memory::Event& event);

// The conversation in OpenAI chat form: [{"role", "content", "reasoning_content"?, "tool_calls"?,
// "tool_call_id"?}, ...] as JSON text.
std::string messages_json(const JobState& state);

// {"id", "name", "status", "steps", "generated_tokens", "created_unix_ms", "finish_reason",
// "limit", "error", "answer", "pending_approvals": [...], "messages": [...]}.
std::string job_json(const JobState& state, bool with_messages);

// A deterministic tool-call id from (session, step, index).
std::string tool_call_id(std::string_view session, uint32_t step, size_t index);

}  // namespace mnemo::agent
