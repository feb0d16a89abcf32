#pragma once
// Each CLI subcommand lives in its own cmd_*.cc and registers itself here. A command's callback stores
// its exit status in `exit_code`; errors are one line on stderr ("mnemo: ...").
#include <CLI/CLI.hpp>
#include <string_view>

namespace mnemo::app {

struct CommandContext {
  int exit_code = 0;
};

void register_tokenize_command(CLI::App& app, CommandContext& ctx);
void register_chat_commands(CLI::App& app, CommandContext& ctx);
void register_bench_commands(CLI::App& app, CommandContext& ctx);
void register_model_commands(CLI::App& app, CommandContext& ctx);
void register_forward_command(CLI::App& app, CommandContext& ctx);
void register_generate_command(CLI::App& app, CommandContext& ctx);
void register_sandbox_commands(CLI::App& app, CommandContext& ctx);
void register_store_commands(CLI::App& app, CommandContext& ctx);
void register_resume_bench(CLI::App& bench, CommandContext& ctx);
// Adds `bench sandbox` to the `bench` group.
void register_sandbox_bench(CLI::App& bench, CommandContext& ctx);
void register_engine_benches(CLI::App& bench, CommandContext& ctx);
void register_agent_bench(CLI::App& bench, CommandContext& ctx);
// Adds `bench ws` (cmd_bench_ws.cc).
void register_ws_bench(CLI::App& bench, CommandContext& ctx);
void register_device_command(CLI::App& app, CommandContext& ctx);
void register_run_commands(CLI::App& app, CommandContext& ctx);
void register_jobs_commands(CLI::App& app, CommandContext& ctx);
void register_serve_command(CLI::App& app, CommandContext& ctx);
void register_keys_commands(CLI::App& app, CommandContext& ctx);

// Prints "mnemo: MESSAGE" on stderr and returns the exit status for a failed command.
int fail(std::string_view message);

}  // namespace mnemo::app
