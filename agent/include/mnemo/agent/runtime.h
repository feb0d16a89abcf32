#pragma once
// The agent runtime (DESIGN.md, "Data flow of one agent step"): jobs run as Boost.Asio C++20
// coroutines on one executor; each model turn goes to a shared Engine whose tokens stream back
// through an Asio channel; tools run in the sandbox; every step is committed to the store so that a
// job resumes exactly after a crash (docs/agent.md).
#include <mnemo/agent/job_spec.h>
#include <mnemo/agent/job_state.h>
#include <mnemo/agent/policy.h>
#include <mnemo/base/status.h>
#include <mnemo/inference/engine.h>
#include <mnemo/memory/store.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace mnemo::agent {

// A live-only event (never persisted): message.delta, reasoning.delta, tool_call.args.delta,
// tool.exec.output.delta. `seq` is the seq of the durable event it leads to.
struct LiveEvent {
  std::string type;
  uint64_t seq = 0;
  std::string text;
  size_t tool_index = 0;
  std::string name;     // the tool, for tool_call.args.delta and tool.exec.output.delta; a
                        // notice's subject ("resume": a fallback to prefill, "tools": schema
                        // keywords left to validation)
  std::string call_id;  // tool.exec.output.delta: the call whose command wrote it
  std::string stream;   // tool.exec.output.delta: "stdout" or "stderr"
};

// Time spent in one step, for progress lines and `mnemo bench agent`.
struct StepStats {
  uint32_t step = 0;
  double total_ms = 0;  // from the turn's start to the step's last commit
  double model_ms = 0;  // waiting for the model's turn
  double tool_ms = 0;   // running tools
  int64_t generated_tokens = 0;
  int64_t prompt_tokens = 0;  // fed to the model this step (prefill)
};

struct JobObserver {
  std::function<void(const memory::Event&)> on_event;  // each durable event, after its commit
  std::function<void(const LiveEvent&)> on_live;
  std::function<void(const StepStats&)> on_step;
};

struct NewJob {
  JobSpec spec;
  std::string spec_yaml;  // the job file's text: recorded so that resume parses the same job
  std::string spec_file;
  std::map<std::string, std::string> inputs;
  std::string id;         // empty: NAME-YYYYMMDD-HHMMSS-XXXX
  std::string workspace;  // host directory the tools work in; empty: the current directory
  std::string tenant;     // empty: RuntimeOptions::tenant
  // The operator's own job (through `mnemo serve`'s operator channel): its tenant's policy is not
  // applied, now or on resume, as for a job the CLI runs itself.
  bool operator_job = false;
};

struct RunResult {
  JobState state;  // as the log now tells it
  JobStatus status = JobStatus::kInterrupted;
};

struct RuntimeOptions {
  std::string tenant = "local";
  // The embedded model of a job that names no directory (the default model).
  std::string default_model_dir;
  inference::EngineOptions engine;
  // The operator's configuration: its endpoints resolve model.remote.endpoint; with
  // enforce_policy (mnemo serve), every job is held to its tenant's policy when it starts and
  // each time it is loaded again (a tightened policy stops a job beyond it from resuming).
  std::shared_ptr<const OperatorConfig> config;
  bool enforce_policy = false;
};

enum class StopMode {
  kCancel,  // the job finishes as cancelled
  kPause,   // the job stops where it is and stays resumable (Ctrl-C, SIGTERM, shutdown)
};

class Runtime {
 public:
  Runtime(boost::asio::any_io_executor executor, memory::Store& store, RuntimeOptions options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Checks the job (its tools exist, its model loads, its tenant's policy allows it), creates its
  // session and runs it until it stops: finished, waiting for an approval, or stopped with stop().
  // An existing id is an error.
  boost::asio::awaitable<Result<RunResult>> start(NewJob job, JobObserver observer = {});
  // The same checks and the session with its first input, without running it: resume() runs it
  // (a queued job).
  boost::asio::awaitable<Result<JobState>> create(NewJob job, JobObserver observer = {});
  // Continues a stored job from its last committed step (its last KV snapshot, no prefill of what
  // the snapshot holds). A finished job is returned as it is.
  boost::asio::awaitable<Result<RunResult>> resume(std::string id, JobObserver observer = {});
  // Adds a user message to a session whose last run ended (finished, or interrupted between steps)
  // and runs it again: a new run, whose limits count from this input. A session waiting for an
  // approval, or running here, refuses it.
  boost::asio::awaitable<Result<RunResult>> input(std::string id, std::string content,
                                                  JobObserver observer = {});
  // Records the decision on a call waiting for approval (tool.approval); resume() then continues.
  Status decide(std::string_view id, std::string_view call_id, bool approve, std::string_view by);
  // Finishes a job that is not running here as cancelled (run.finished).
  Status cancel_stored(std::string_view id);
  // Stops a job running here at its next safe point (a running tool is killed, a model turn is
  // cut); false when it is not running here.
  bool stop(std::string_view id, StopMode mode);
  // Stops every job running here.
  void stop_all(StopMode mode);

  // The job's state from its log.
  Result<JobState> load(std::string_view id) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Whether a run of the job is going on now, in this process or another one on the same store
// (a running job holds a lock on STORE/control/ID.running).
bool job_running(const std::string& store_dir, std::string_view id);

// A new job id: NAME-YYYYMMDD-HHMMSS-XXXX (UTC, 4 random hex digits).
std::string new_job_id(std::string_view name);

}  // namespace mnemo::agent
