#pragma once
// One job's run: the loop of DESIGN.md "Data flow of one agent step" on the job's state, which is
// always exactly what its event log says (every commit is applied through apply_event).
#include <mnemo/agent/runtime.h>
#include <mnemo/inference/constraint.h>
#include <mnemo/inference/remote_client.h>
#include <mnemo/tools/registry.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "embedded_model.h"
#include "event_payloads.h"
#include "model_turn.h"
#include "runtime_impl.h"

namespace mnemo::agent::internal {

// The job's tools: the registry the model sees and the context they run in.
Status build_tools(const JobState& state, memory::Store* store, tools::ToolRegistry& registry,
                   tools::ToolContext& context);

// Bytes the directory tree holds on disk (symlinks not followed, other file systems not entered);
// the walk stops once it passes stop_after.
uint64_t workspace_bytes(const std::string& dir, uint64_t stop_after);

// Text from users and tools cannot forge the prompt's special tokens: their full-width bars become
// ASCII ones, so "<｜User｜>" in a tool's output stays text.
std::string neutralize(std::string text);

class Session {
 public:
  // `model` null: the job's model is remote (spec.model.remote).
  Session(Runtime::Impl& runtime, JobState state, EmbeddedModel* model, JobObserver observer);

  // For a new job: renders the first prompt and commits input.message.
  boost::asio::awaitable<Status> begin(const std::string& input);
  // begin() in two halves: the input rendered and checked (no store access: a job not created
  // yet can be refused), then committed.
  struct PreparedInput {
    memory::NewEvent event;
  };
  Result<PreparedInput> prepare_input(const std::string& input);
  boost::asio::awaitable<Status> commit_input(PreparedInput input);
  // Takes the state as the store now has it (after the job's session was created).
  void adopt(JobState state) { state_ = std::move(state); }
  // Tells the observer of an event committed outside this session (session.created).
  void notify(const memory::Event& e);
  // Inputs (a new job's whole first prompt) longer than this many tokens are refused; 0: no bound.
  void set_input_ceiling(uint64_t tokens) { input_ceiling_ = tokens; }
  // Reopens a run that failed (run.retried), after checking that the job can run here (its tools,
  // its remote endpoint's key): run(true) then continues it from its last committed step.
  boost::asio::awaitable<Status> retry();
  // The notice naming the tool schemas' keywords the grammar leaves to validation.
  std::string unenforced_notice() const;
  // Runs until the job finishes, waits for an approval or is stopped. `restore`: start from the
  // job's last KV snapshot (resume).
  boost::asio::awaitable<Status> run(bool restore);
  void stop(StopMode mode);
  const JobState& state() const { return state_; }

 private:
  enum class Stop { kNone, kCancel, kPause, kTime };

  Status setup();
  Status setup_remote();
  // Rebuilds the sequence from the job's newest KV snapshot when it matches the transcript.
  ResumeRecord restore_kv();
  // The token ids the sequence holds: the transcript's, then (for a turn being committed, whose
  // message is not applied yet) the turn's own.
  Result<std::vector<inference::TokenId>> fed_tokens(
      std::span<const inference::TokenId> uncommitted) const;
  boost::asio::awaitable<Status> turn();
  boost::asio::awaitable<Status> remote_turn();
  // Commits a finished model turn: message, and the first call's intent or the run's end.
  boost::asio::awaitable<Status> commit_turn(TurnOutput& out, int64_t budget);
  void cancel_model();
  // Runs or settles the last turn's calls in order; true when the job now waits for an approval.
  boost::asio::awaitable<Result<bool>> settle_calls();
  boost::asio::awaitable<tools::ToolResult> run_tool(const CallState& call, double& elapsed_ms);
  boost::asio::awaitable<Status> finish_stopped();
  std::optional<std::string> limit_reached() const;
  // Why the workspace is over its quota (sandbox.disk), or empty.
  std::string disk_detail() const;
  // Commits events (with the step's KV snapshot when asked) and applies them to the state.
  // `background`: the snapshot is exported now and written while the session goes on (its events
  // are applied at once, observers hear of them once they are durable); the next commit waits for
  // it, so the log's order is the session's.
  // `uncommitted_tokens`: the tokens `events` add to the transcript beyond what it holds (a turn's
  // generated tokens), for the snapshot's token ids.
  boost::asio::awaitable<Status> commit(std::vector<memory::NewEvent> events, bool snapshot,
                                        bool background = false,
                                        std::span<const inference::TokenId> uncommitted_tokens = {});
  // Waits for a background commit, if one is in flight.
  boost::asio::awaitable<Status> drain();
  Result<std::vector<inference::TokenId>> result_tokens(const std::string& tool_call_id,
                                                        const std::string& content) const;
  inference::Conversation conversation(size_t message_count) const;
  // The number of messages up to and including the last assistant turn.
  size_t messages_through_last_turn() const;
  std::shared_ptr<inference::LogitsProcessor> processor(int64_t budget, Status& refusal) const;
  // Live events from the chat parser's (message.delta, reasoning.delta, tool_call.args.delta).
  void live_from_chat(const inference::ChatEvent& e);
  void live(std::string type, std::string text, size_t tool_index = 0, std::string name = {});

  Runtime::Impl& rt_;
  JobState state_;
  EmbeddedModel* model_;
  std::unique_ptr<inference::RemoteChatClient> remote_;
  std::shared_ptr<std::atomic<bool>> remote_cancel_;
  JobObserver observer_;
  tools::ToolRegistry registry_;
  tools::ToolContext tool_ctx_;
  std::shared_ptr<const inference::ToolCallGrammar> grammar_;
  std::optional<inference::Sequence> sequence_;
  size_t fed_ = 0;  // transcript tokens the sequence holds
  bool set_up_ = false;
  std::vector<std::string> call_names_;  // of the current turn's calls, by index
  struct Pending;
  std::shared_ptr<Pending> pending_;     // a background commit in flight
  std::set<std::string> fresh_intents_;  // intents this run committed and has not yet run
  Stop stop_ = Stop::kNone;
  uint64_t input_ceiling_ = 0;
  std::optional<inference::RequestId> request_;
  boost::asio::cancellation_signal* tool_signal_ = nullptr;
  std::chrono::steady_clock::time_point deadline_;
  StepStats step_stats_;
  std::chrono::steady_clock::time_point step_start_;
};

}  // namespace mnemo::agent::internal
