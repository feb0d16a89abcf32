#pragma once
// A job specification: the YAML file `mnemo run` executes (schema in docs/jobs.md). Parsing
// validates everything up front so that a bad job fails before any model is loaded, with
// file:line:col: field.
#include <mnemo/base/status.h>
#include <mnemo/inference/model.h>
#include <mnemo/sandbox/policy.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::agent {

enum class ModelKind { kEmbedded, kRemote };

struct EmbeddedModelSpec {
  std::string dir;  // empty: the default embedded model (MNEMO_HOME/models/tiny)
  inference::Precision precision = inference::Precision::kF32;
};

struct RemoteModelSpec {
  // An endpoint the operator configured, by name (`mnemo serve|run --config`): it supplies
  // base_url, the key and the models allowed. The only form a tenant's job may use.
  std::string endpoint;
  std::string base_url;     // an OpenAI-compatible endpoint, e.g. https://api.deepseek.com
  std::string model;        // the model name the endpoint expects
  std::string api_key_env;  // the environment variable holding the key (never the key itself)
};

struct ModelSpec {
  ModelKind kind = ModelKind::kEmbedded;
  EmbeddedModelSpec embedded;  // meaningful when kind == kEmbedded
  RemoteModelSpec remote;      // meaningful when kind == kRemote
};

struct InputSpec {
  std::optional<std::string> default_value;  // none: the input must be given (--input NAME=VALUE)
  std::string description;
};

enum class Approval { kNever, kAlways };

struct ToolSpec {
  std::string name;
  Approval approval = Approval::kNever;
  // A job-defined command tool (when `command` is set): a bash command run in the job's sandbox
  // with the call's arguments as JSON in $MNEMO_ARGS. Built-in tools leave these empty.
  std::string command;
  std::string description;
  std::string
      parameters_json;  // JSON schema of the arguments (default: an object without properties)
  bool idempotent = false;
  // http_get: the hosts it may reach ("example.com", "*.example.com", "*", an IP address);
  // loopback, link-local and private addresses only through a host listed without a wildcard.
  std::vector<std::string> hosts;
  // Those of `hosts` that may resolve to non-public addresses: the ones listed without a
  // wildcard (in a tenant's job, only where the operator lists them so too).
  std::vector<std::string> private_hosts;
  bool is_command() const { return !command.empty(); }
};

enum class ToolChoiceKind { kAuto, kRequired, kNone, kTool };

struct ToolChoice {
  ToolChoiceKind kind = ToolChoiceKind::kAuto;
  std::string tool;  // the forced tool when kind == kTool
};

struct SandboxSpec {
  sandbox::SandboxMode mode = sandbox::SandboxMode::kIsolated;
  uint64_t memory_bytes = 512ull << 20;
  std::chrono::seconds cpu{60};
  uint32_t pids = 256;
  std::chrono::milliseconds timeout{60000};  // wall clock of one sandboxed command
  uint64_t disk_bytes = 0;  // the workspace's quota (0: none); a job over it stops (limit disk)
};

struct LimitsSpec {
  uint32_t max_steps = 50;          // model turns before the job stops on its step limit
  uint64_t max_tokens = 32768;      // generated tokens over the whole job
  uint64_t max_turn_tokens = 4096;  // generated tokens of one model turn
  std::chrono::milliseconds timeout{30 * 60 * 1000};  // wall clock of the whole job
  std::chrono::milliseconds tool_timeout{60000};      // one tool call
};

struct SamplingSpec {
  float temperature = 0.0f;  // 0: greedy
  float top_p = 1.0f;
  std::optional<uint64_t> seed;  // none: a fresh seed per job (recorded, so resume stays exact)
};

struct DurabilitySpec {
  uint32_t snapshot_every = 1;  // commit a KV snapshot every N steps; 1 = every step
};

struct JobSpec {
  std::string name;
  ModelSpec model;
  std::string instructions;  // the system prompt
  std::string input;         // the user message template, with {{inputs.NAME}} placeholders
  std::map<std::string, InputSpec> inputs;
  std::vector<ToolSpec> tools;
  ToolChoice tool_choice;
  SandboxSpec sandbox;
  LimitsSpec limits;
  SamplingSpec sampling;
  DurabilitySpec durability;
  // The fields the job file set itself ("sandbox.memory"), with their file:line:col: an operator's
  // ceiling refuses an explicit value over it but lowers a default.
  std::map<std::string, std::string, std::less<>> given;

  const ToolSpec* find_tool(std::string_view tool_name) const;
  // Where the job set `field` ("job:3:5"), or just the field's name when it did not.
  std::string where(std::string_view field) const;
};

// Parses a job from YAML text; file_name only labels errors ("jobs/fix.yaml:12:5: limits.max_steps
// must be a positive integer"). Unknown fields, wrong types and inconsistent values are all errors.
Result<JobSpec> parse_job_spec(std::string_view yaml_text, std::string_view file_name);

// Reads and parses a job file; errors are labelled with path.
Result<JobSpec> load_job_spec(const std::string& path);

// Bounds on a job's text before anything is built from it: its size, and the YAML nodes it expands
// to (anchors and aliases count each time they are used) and their nesting.
inline constexpr size_t kMaxJobBytes = 1 << 20;
inline constexpr size_t kMaxJobNodes = 20000;
inline constexpr int kMaxJobDepth = 64;

// Fills the input template's {{inputs.NAME}} placeholders from inputs, else from the defaults. An
// input name the job does not declare, or a declared input with neither a value nor a default, is
// an error.
Result<std::string> render_input(const JobSpec& spec,
                                 const std::map<std::string, std::string>& inputs);

std::string_view tool_choice_name(ToolChoiceKind kind);
std::string_view approval_name(Approval approval);

}  // namespace mnemo::agent
