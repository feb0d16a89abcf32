// `mnemo sandbox exec -- CMD...` runs one command in the sandbox and exits with its status (124 on
// timeout, 137 when a limit killed it); `mnemo sandbox info` says what isolation this machine has.
#include <mnemo/sandbox/runner.h>
#include <mnemo/sandbox/support.h>
#include <mnemo/sandbox/workspace.h>
#include <stdlib.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "commands.h"

namespace mnemo::app {
namespace {

// Splits "256M" into 256 and "M"; nullopt when there is no leading number.
std::optional<std::pair<uint64_t, std::string>> split(const std::string& text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data() || value == 0) return std::nullopt;
  std::string unit(end, text.data() + text.size());
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::make_pair(value, unit);
}

// Bytes from "256M", "1G", "512K", "4096"; nullopt when malformed or zero.
std::optional<uint64_t> parse_size(const std::string& text) {
  auto parts = split(text);
  if (!parts) return std::nullopt;
  auto [value, unit] = *parts;
  if (unit.empty() || unit == "b") return value;
  int shift = unit == "k" || unit == "kb" || unit == "kib"   ? 10
              : unit == "m" || unit == "mb" || unit == "mib" ? 20
              : unit == "g" || unit == "gb" || unit == "gib" ? 30
                                                             : -1;
  if (shift < 0 || value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

// "10s", "500ms", "2m", or plain seconds; nullopt when malformed or zero.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  auto parts = split(text);
  if (!parts) return std::nullopt;
  auto [value, unit] = *parts;
  if (unit == "ms") return std::chrono::milliseconds(value);
  if (unit.empty() || unit == "s") return std::chrono::seconds(value);
  if (unit == "m" || unit == "min") return std::chrono::minutes(value);
  return std::nullopt;
}

struct ExecOptions {
  std::string workspace;
  std::string memory = "512M";
  std::string timeout = "60s";
  std::string cpu = "60s";
  std::string max_output = "8M";
  uint32_t pids = 256;
  uint32_t uid = sandbox::kDefaultSandboxUid;
  std::string mode = "isolated";
  std::vector<std::string> read_only;
  std::vector<std::string> command;
};

Result<sandbox::Policy> make_policy(const ExecOptions& opt) {
  sandbox::Policy p;
  auto memory = parse_size(opt.memory);
  if (!memory)
    return Status::invalid_argument("--memory: '" + opt.memory + "' is not a size like 256M");
  auto output = parse_size(opt.max_output);
  if (!output)
    return Status::invalid_argument("--max-output: '" + opt.max_output + "' is not a size like 8M");
  auto timeout = parse_duration(opt.timeout);
  if (!timeout)
    return Status::invalid_argument("--timeout: '" + opt.timeout + "' is not a duration like 10s");
  auto cpu = parse_duration(opt.cpu);
  if (!cpu || cpu->count() % 1000 != 0) {
    return Status::invalid_argument("--cpu: '" + opt.cpu +
                                    "' is not a whole number of seconds like 10s");
  }
  if (opt.uid == 0) return Status::invalid_argument("--uid: the sandbox never runs as host root");
  p.mode = opt.mode == "none" ? sandbox::SandboxMode::kNone : sandbox::SandboxMode::kIsolated;
  p.read_only_paths = opt.read_only;
  p.sandbox_uid = opt.uid;
  p.limits.memory_bytes = *memory;
  p.limits.stdout_cap = p.limits.stderr_cap = *output;
  p.limits.timeout = *timeout;
  p.limits.cpu = std::chrono::duration_cast<std::chrono::seconds>(*cpu);
  p.limits.pids = opt.pids;
  return p;
}

// A fresh workspace that is removed afterwards, for runs that name none.
struct TempWorkspace {
  std::string path;
  ~TempWorkspace() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

int run_exec(const ExecOptions& opt) {
  auto policy = make_policy(opt);
  if (!policy) return fail(policy.status().message());
  TempWorkspace temp;
  if (opt.workspace.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mnemo-sandbox-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return fail("sandbox: cannot create a temporary workspace");
    temp.path = tmpl;
    policy->workspace = temp.path;
  } else {
    policy->workspace = opt.workspace;
  }
  sandbox::ExecRequest req;
  req.argv = opt.command;
  req.policy = *policy;
  req.on_output = [](sandbox::OutputStream s, std::string_view data) {
    FILE* f = s == sandbox::OutputStream::kStdout ? stdout : stderr;
    std::fwrite(data.data(), 1, data.size(), f);
    std::fflush(f);
  };
  if (req.policy.mode == sandbox::SandboxMode::kNone) {
    std::cerr << "mnemo: WARNING: sandbox mode none: the command runs WITHOUT isolation\n";
  }
  auto result = sandbox::run(std::move(req));
  if (!result) return fail(result.status().message());
  if (result->stdout_truncated)
    std::cerr << "mnemo: sandbox: stdout truncated at " << opt.max_output << "\n";
  if (result->stderr_truncated)
    std::cerr << "mnemo: sandbox: stderr truncated at " << opt.max_output << "\n";
  std::string why = sandbox::describe_stop(*result, policy->limits);
  if (!why.empty()) std::cerr << "mnemo: sandbox: " << why << "\n";
  return result->exit_status;
}

}  // namespace

void register_sandbox_commands(CLI::App& app, CommandContext& ctx) {
  CLI::App* sandbox = app.add_subcommand("sandbox", "Run commands in the tool sandbox");
  sandbox->require_subcommand(1);

  auto opt = std::make_shared<ExecOptions>();
  CLI::App* exec = sandbox->add_subcommand(
      "exec",
      "Run one command isolated and bounded; exits with its status (124 timeout, 137 limit)");
  exec->add_option("--workspace", opt->workspace,
                   "host directory at /workspace, read-write (default: a fresh temporary one); as "
                   "root it is handed to the sandbox uid");
  exec->add_option("--memory", opt->memory, "memory limit (cgroup, else RLIMIT_AS)")
      ->capture_default_str();
  exec->add_option("--timeout", opt->timeout, "wall-clock limit; kills every process")
      ->capture_default_str();
  exec->add_option("--cpu", opt->cpu, "CPU time limit of each process")->capture_default_str();
  exec->add_option("--pids", opt->pids, "most processes at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  exec->add_option("--max-output", opt->max_output, "cap on stdout and on stderr each")
      ->capture_default_str();
  exec->add_option("--ro", opt->read_only, "extra host path visible read-only (repeatable)");
  exec->add_option("--uid", opt->uid, "host uid of the sandbox when mnemo runs as root")
      ->capture_default_str();
  exec->add_option("--mode", opt->mode, "isolated, or none (no isolation: loud warning)")
      ->capture_default_str()
      ->check(CLI::IsMember({"isolated", "none"}));
  exec->add_option("command", opt->command, "the command and its arguments, after --")->required();
  exec->callback([opt, &ctx] { ctx.exit_code = run_exec(*opt); });

  CLI::App* info = sandbox->add_subcommand("info", "Print what isolation this machine supports");
  auto uid = std::make_shared<uint32_t>(sandbox::kDefaultSandboxUid);
  info->add_option("--uid", *uid, "host uid of the sandbox when mnemo runs as root")
      ->capture_default_str();
  info->callback([uid, &ctx] {
    auto support = sandbox::probe_support(*uid);
    std::cout << sandbox::format_support(support, *uid);
    ctx.exit_code = 0;
  });
}

}  // namespace mnemo::app
