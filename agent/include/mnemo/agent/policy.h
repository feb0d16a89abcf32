#pragma once
// What the operator of `mnemo serve` grants each tenant (docs/server.md, "Threat model" and "The
// operator's configuration"): ceilings on what a job may ask for, whether the sandbox may be turned
// off, the remote endpoints and http_get hosts it may use, how many of its jobs run at once. The
// operator is trusted; a tenant's job never widens what it was granted: a request beyond policy is
// refused (permission denied, naming the field), never silently lowered. A job that leaves a field
// at its default gets the lower of the default and the ceiling.
#include <mnemo/agent/job_spec.h>
#include <mnemo/base/status.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::agent {

struct Ceilings {
  uint32_t max_steps = 200;
  uint64_t max_tokens = 65536;      // generated over a run
  uint64_t max_turn_tokens = 8192;  // one turn; also an API request's max_tokens
  std::chrono::milliseconds timeout{2 * 3600 * 1000};  // a run's wall clock
  std::chrono::milliseconds tool_timeout{10 * 60 * 1000};
  uint64_t sandbox_memory = 1ull << 30;
  std::chrono::seconds sandbox_cpu{600};
  uint32_t sandbox_pids = 256;
  std::chrono::milliseconds sandbox_timeout{10 * 60 * 1000};
  uint64_t workspace_bytes = 1ull << 30;  // the disk quota of a job's workspace
  // The prompt a job or a request starts from (instructions, tools and input), in tokens.
  uint64_t prompt_tokens = 65536;
};

struct TenantPolicy {
  Ceilings ceilings;
  bool allow_sandbox_none = false;
  // Jobs of the tenant running at once; more wait in a queue (status "queued").
  uint32_t max_concurrent_jobs = 8;
  std::vector<std::string> remote_endpoints;  // names of OperatorConfig::endpoints ("*": all)
  // Hosts http_get may reach for the tenant; a job's own list is intersected with it. Empty: none.
  std::vector<std::string> http_get_hosts;
};

// An OpenAI-compatible endpoint the operator runs or pays for; tenants name it, never see its key.
struct RemoteEndpoint {
  std::string name;
  std::string base_url;
  std::vector<std::string> models;  // the first is the default
  std::string api_key_env;          // read from the server's environment
};

struct OperatorConfig {
  std::string file;  // where it was read from ("" for the built-in defaults)
  TenantPolicy defaults;
  std::map<std::string, TenantPolicy, std::less<>> tenants;
  std::map<std::string, RemoteEndpoint, std::less<>> endpoints;
  // Browser origins allowed besides the server's own ("https://console.example.com").
  std::vector<std::string> allowed_origins;
  // The precision the server runs its model at (set by `mnemo serve`): tenant jobs run at it.
  std::optional<inference::Precision> served_precision;

  const TenantPolicy& tenant(std::string_view name) const;
};

// Parses the operator's YAML (docs/server.md); errors carry file:line:col.
Result<OperatorConfig> parse_operator_config(std::string_view yaml_text, std::string_view file);
Result<OperatorConfig> load_operator_config(const std::string& path);

// Checks a tenant's job against its policy and returns the job as it will run: defaults lowered to
// the ceilings, the remote endpoint resolved. A request beyond policy is permission_denied naming
// the field ("job:12:5: sandbox.memory 1T is over this tenant's ceiling of 1G").
Result<JobSpec> apply_policy(const JobSpec& spec, const OperatorConfig& config,
                             std::string_view tenant);

// Resolves model.remote.endpoint against the configured endpoints (any job, local runs too).
Status resolve_endpoint(JobSpec& spec, const OperatorConfig* config);

// Sandbox limits that this machine cannot honour (pids over the process limit), for any job.
Status check_machine_limits(const JobSpec& spec);

// "512M", "1G": a byte count as the job files write it.
std::string format_size(uint64_t bytes);

}  // namespace mnemo::agent
