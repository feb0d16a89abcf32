#pragma once
// Runs an agent job in the foreground for `mnemo run`, `mnemo resume` and `mnemo jobs
// approve|deny`: one io_context, the runtime, progress lines on stderr, Ctrl-C/SIGTERM pause the
// job (resumable).
#include <mnemo/agent/runtime.h>

#include <boost/json/object.hpp>

#include <functional>
#include <string>

namespace mnemo::app {

struct JobRunOptions {
  std::string store;   // empty: MNEMO_HOME/store
  bool json = false;   // print the job as JSON at the end instead of the answer
  bool quiet = false;  // no progress lines
  std::string job_id;  // for the hints in progress lines
  std::string config;  // the operator's YAML (its endpoints resolve model.remote.endpoint)
  std::string tenant = "local";  // whose job ids are given (resume, approve, deny)
};

// What to do once the store and runtime are up: start or resume a job.
using JobLauncher = std::function<boost::asio::awaitable<Result<agent::RunResult>>(
    agent::Runtime&, const agent::JobObserver&)>;

// Returns the process exit status: 0 completed or stopped by a limit, 1 error or failed, 3 waiting
// for an approval, 4 cancelled, 130 paused by a signal.
int run_job(const JobRunOptions& options, const JobLauncher& launch);

std::string store_dir_or_default(const std::string& store);

// Whether a `mnemo serve` holds the store and listens on its operator channel (STORE/operator.sock,
// docs/server.md): the CLI then runs jobs through it instead of refusing.
bool server_holds(const std::string& store_dir);
// Sends one operator request ({"op": "run" | "resume" | "approve" | "deny", ...}) to that server,
// prints the job's progress as run_job does, and returns the same exit statuses.
int run_via_server(const JobRunOptions& options, const boost::json::object& request);

// The store id of a tenant's job: the id itself for the local tenant, TENANT:ID for the others (as
// `mnemo serve` stores them).
std::string tenant_job_id(const std::string& tenant, const std::string& id);

// The job a command names, within one tenant: `given` itself when the tenant has a job with that
// id, else the one job of the tenant whose id starts with it (`mnemo jobs show hello` for
// hello-1a2b3c); several matches are an error listing them. Returns the store id. No match, or a
// store that cannot be read, returns the store id of `given`: the command reports its own error.
Result<std::string> resolve_job_id(const std::string& store, const std::string& given,
                                   const std::string& tenant = "local");

}  // namespace mnemo::app
