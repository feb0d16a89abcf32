#pragma once
// Runs an agent job in the foreground for `mnemo run`, `mnemo resume` and `mnemo jobs
// approve|deny`: one io_context, the runtime, progress lines on stderr, Ctrl-C/SIGTERM pause the
// job (resumable).
#include <mnemo/agent/runtime.h>

#include <functional>
#include <string>

namespace mnemo::app {

struct JobRunOptions {
  std::string store;   // empty: MNEMO_HOME/store
  bool json = false;   // print the job as JSON at the end instead of the answer
  bool quiet = false;  // no progress lines
  std::string job_id;  // for the hints in progress lines
  std::string config;  // the operator's YAML (its endpoints resolve model.remote.endpoint)
};

// What to do once the store and runtime are up: start or resume a job.
using JobLauncher = std::function<boost::asio::awaitable<Result<agent::RunResult>>(
    agent::Runtime&, const agent::JobObserver&)>;

// Returns the process exit status: 0 completed or stopped by a limit, 1 error or failed, 3 waiting
// for an approval, 4 cancelled, 130 paused by a signal.
int run_job(const JobRunOptions& options, const JobLauncher& launch);

std::string store_dir_or_default(const std::string& store);

// The job a command names: `given` itself when a job has that id, else the one job whose id starts
// with it (`mnemo jobs show hello` for hello-1a2b3c); several matches are an error listing them.
// No match, or a store that cannot be read, returns `given`: the command reports its own error.
Result<std::string> resolve_job_id(const std::string& store, const std::string& given);

}  // namespace mnemo::app
