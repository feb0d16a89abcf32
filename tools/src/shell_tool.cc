// shell: `/bin/bash -c CMD` in the sandbox with the workspace mounted. The runner has no cancel
// call, so a cancelled run is found by a unique token in its argv and SIGKILLed; the sandbox then
// tears down the rest of the tree (its init exits with the command).
#include <dirent.h>
#include <mnemo/base/utf8.h>
#include <mnemo/sandbox/runner.h>
#include <mnemo/tools/builtin_tools.h>
#include <mnemo/tools/output_cap.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/value.hpp>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include "py_json.h"

namespace mnemo::tools {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

struct RunState {
  std::mutex mu;
  std::optional<Result<sandbox::ExecResult>> result;
  bool done = false;
  bool cancelled = false;

  bool is_done() {
    std::lock_guard lock(mu);
    return done;
  }
};

std::string unique_token() {
  static std::atomic<uint64_t> counter{0};
  return "mnemo-shell-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

// SIGKILLs every host process whose command line holds `token`.
void kill_by_token(const std::string& token) {
  DIR* d = opendir("/proc");
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/cmdline", std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    if (ss.str().find(token) != std::string::npos) kill(std::stoi(e->d_name), SIGKILL);
  }
  closedir(d);
}

// Kills until the run reports back: a cancel may land before the command has exec'd.
void kill_until_done(std::shared_ptr<asio::steady_timer> timer, std::shared_ptr<RunState> state,
                     std::string token) {
  if (state->is_done()) return;
  kill_by_token(token);
  timer->expires_after(20ms);
  timer->async_wait([timer, state, token](boost::system::error_code ec) {
    if (!ec) kill_until_done(timer, state, token);
  });
}

template <typename CompletionToken>
auto async_exec(asio::any_io_executor ex, sandbox::ExecRequest request, std::string token,
                std::shared_ptr<RunState> state, CompletionToken&& completion) {
  return asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
      [ex, token, state](auto handler, sandbox::ExecRequest req) {
        using Handler = std::decay_t<decltype(handler)>;
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto handler_ex = asio::get_associated_executor(handler, ex);
        if (slot.is_connected()) {
          slot.assign([ex, token, state](asio::cancellation_type) {
            {
              std::lock_guard lock(state->mu);
              if (state->done || state->cancelled) return;
              state->cancelled = true;
            }
            kill_until_done(std::make_shared<asio::steady_timer>(ex), state, token);
          });
        }
        auto held = std::make_shared<std::optional<Handler>>(std::move(handler));
        sandbox::Runner(ex).async_run(std::move(req),
                                      [state, held, handler_ex](Result<sandbox::ExecResult> r) {
                                        {
                                          std::lock_guard lock(state->mu);
                                          state->result = std::move(r);
                                          state->done = true;
                                        }
                                        asio::post(handler_ex, [held]() {
                                          Handler h = std::move(**held);
                                          held->reset();
                                          asio::get_associated_cancellation_slot(h).clear();
                                          std::move(h)(boost::system::error_code{});
                                        });
                                      });
      },
      completion, std::move(request));
}

void append_stream(std::string& out, std::string_view label, const std::string& data,
                   bool runner_cut, size_t cap, bool& truncated) {
  std::string text = utf8::lossy(data);
  if (runner_cut) text += "\n[... output beyond the sandbox's cap was dropped ...]";
  CappedText capped = cap_text(text, cap);
  truncated = truncated || capped.cut_bytes > 0;
  out += std::string(label) + ":\n" + capped.text;
  if (!capped.text.empty() && capped.text.back() != '\n') out += '\n';
}

ToolResult format_exec(const sandbox::ExecResult& r, const sandbox::Limits& limits, size_t cap) {
  std::string head = "exit status: " + std::to_string(r.exit_status);
  std::string stop = sandbox::describe_stop(r, limits);
  if (!stop.empty()) head += " (" + stop + ")";
  head += "\n";
  if (!r.warning.empty()) head += "warning: " + r.warning + "\n";
  bool truncated = false;
  std::string full = head, shown = head;
  bool unused = false;
  append_stream(full, "stdout", r.stdout_data, r.stdout_truncated, SIZE_MAX, unused);
  append_stream(full, "stderr", r.stderr_data, r.stderr_truncated, SIZE_MAX, unused);
  // Each stream gets its own half, so a flood on stdout cannot hide the error on stderr.
  append_stream(shown, "stdout", r.stdout_data, r.stdout_truncated, cap / 2, truncated);
  append_stream(shown, "stderr", r.stderr_data, r.stderr_truncated, cap / 2, truncated);
  ToolResult result;
  // A command that ran to its own exit is a result for the model, whatever its status.
  result.ok = r.reason == sandbox::ExitReason::kExited;
  result.content = std::move(shown);
  result.exit_status = r.exit_status;
  result.truncated = truncated;
  if (truncated) result.full_output = std::move(full);
  return result;
}

// Runs `command` with /bin/bash -c in the sandbox, the workspace mounted; `args` (JSON text) goes
// to $MNEMO_ARGS and the call's id to $MNEMO_CALL_ID when given. `label` prefixes error results.
asio::awaitable<ToolResult> run_bash(std::string label, std::string command,
                                     std::optional<std::string> args, std::string call_id,
                                     ToolContext& ctx) {
  auto cs = co_await asio::this_coro::cancellation_state;
  if (cs.cancelled() != asio::cancellation_type::none)
    co_return ToolResult::error(label + ": cancelled before it started");

  const std::string token = unique_token();
  sandbox::ExecRequest request;
  // The outer bash keeps the token in its argv even when the command exec's away.
  if (args) {
    request.argv = {"/bin/bash",
                    "-c",
                    "export MNEMO_ARGS=\"$2\" MNEMO_CALL_ID=\"$3\"; /bin/bash -c \"$1\"; exit $?",
                    token,
                    command,
                    *args,
                    call_id};
  } else {
    request.argv = {"/bin/bash", "-c", "/bin/bash -c \"$1\"; exit $?", token, command};
  }
  request.policy = ctx.policy;
  request.policy.workspace = ctx.workspace;
  if (ctx.on_output) {
    request.on_output = [cb = ctx.on_output](sandbox::OutputStream stream, std::string_view chunk) {
      cb(stream == sandbox::OutputStream::kStdout ? "stdout" : "stderr", chunk);
    };
  }
  auto& limits = request.policy.limits;
  limits.timeout = std::min(limits.timeout, ctx.timeout);

  auto ex = co_await asio::this_coro::executor;
  auto state = std::make_shared<RunState>();
  // Built outside the co_await: GCC 12 destroys temporaries of a co_await expression twice.
  auto exec = async_exec(ex, std::move(request), token, state, asio::use_awaitable);
  co_await std::move(exec);

  std::lock_guard lock(state->mu);
  if (state->cancelled) co_return ToolResult::error(label + ": cancelled; the command was killed");
  if (!state->result->is_ok())
    co_return ToolResult::error(label + ": " + state->result->status().message());
  co_return format_exec(state->result->value(), limits, ctx.output_cap);
}

class ShellTool final : public Tool {
 public:
  std::string_view name() const override { return "shell"; }
  std::string_view description() const override {
    return "Run a bash command in an isolated sandbox (no network) whose working directory is the "
           "workspace. Returns the exit status, stdout and stderr.";
  }
  std::string_view parameters() const override {
    return R"j({"type": "object", "properties": {)j"
           R"j("command": {"type": "string", "minLength": 1, "description": "the command line, run by /bin/bash -c"}}, )j"
           R"j("required": ["command"], "additionalProperties": false})j";
  }
  bool idempotent() const override { return false; }

  asio::awaitable<ToolResult> run(ToolCall call, ToolContext& ctx) override {
    Result<json::value> args = internal::parse_json(call.arguments, "arguments");
    if (!args || !args->is_object())
      co_return ToolResult::error("shell: arguments must be an object");
    std::string command = internal::string_field(args->get_object(), "command");
    auto run = run_bash("shell", std::move(command), std::nullopt, call.id, ctx);
    co_return co_await std::move(run);
  }
};

// A job-defined tool: a fixed command, the call's arguments in $MNEMO_ARGS.
class CommandTool final : public Tool {
 public:
  explicit CommandTool(CommandToolSpec spec) : spec_(std::move(spec)) {}
  std::string_view name() const override { return spec_.name; }
  std::string_view description() const override { return spec_.description; }
  std::string_view parameters() const override { return spec_.parameters_json; }
  bool idempotent() const override { return spec_.idempotent; }

  asio::awaitable<ToolResult> run(ToolCall call, ToolContext& ctx) override {
    auto run = run_bash(spec_.name, spec_.command, call.arguments, call.id, ctx);
    co_return co_await std::move(run);
  }

 private:
  CommandToolSpec spec_;
};

}  // namespace

std::shared_ptr<Tool> make_shell_tool() { return std::make_shared<ShellTool>(); }

std::shared_ptr<Tool> make_command_tool(CommandToolSpec spec) {
  return std::make_shared<CommandTool>(std::move(spec));
}

}  // namespace mnemo::tools
