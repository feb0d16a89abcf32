// The tool half of a step: approvals, intents, running each call in the sandbox with its timeout
// and the job's cancellation, and committing each result (the step's last one with the KV snapshot
// and the tokens the results add to the transcript).
#include <mnemo/sandbox/workspace.h>
#include <mnemo/tools/builtin_tools.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <ftw.h>

#include <algorithm>
#include <filesystem>

#include "event_payloads.h"
#include "session.h"

namespace mnemo::agent::internal {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

Status build_tools(const JobState& state, memory::Store* store, tools::ToolRegistry& registry,
                   tools::ToolContext& context) {
  tools::ToolRegistry builtins;
  MNEMO_RETURN_IF_ERROR(tools::add_builtin_tools(builtins));
  for (const ToolSpec& t : state.spec.tools) {
    std::shared_ptr<tools::Tool> tool;
    if (t.is_command()) {
      tool = tools::make_command_tool(
          {t.name, t.description, t.parameters_json, t.command, t.idempotent});
    } else if (t.name == "http_get") {
      // The job's own hosts (docs/tools.md); without any, every host is refused.
      tools::HttpGetOptions http;
      http.allowed_hosts = t.hosts;
      http.private_hosts = t.private_hosts;
      tool = tools::make_http_get_tool(std::move(http));
    } else {
      tool = builtins.find(t.name);
      if (!tool) {
        std::string names;
        for (const std::string& n : builtins.names()) names += (names.empty() ? "" : ", ") + n;
        return Status::invalid_argument("tools: unknown tool " + t.name + " (built-ins: " + names +
                                        "; a job-defined tool needs a command)");
      }
    }
    if (Status s = registry.add(tool); !s)
      return Status::invalid_argument("tools." + t.name + ": " + s.message());
  }
  const SandboxSpec& sb = state.spec.sandbox;
  context.session_id = state.id;
  context.workspace = state.origin.workspace;
  context.policy.mode = sb.mode;
  context.policy.limits.memory_bytes = sb.memory_bytes;
  context.policy.limits.cpu = sb.cpu;
  context.policy.limits.pids = sb.pids;
  context.policy.limits.timeout = sb.timeout;
  // A quota'd workspace: no single file may outgrow it either (the sandbox's RLIMIT_FSIZE).
  if (sb.disk_bytes != 0)
    context.policy.limits.file_size_bytes = std::min(context.policy.limits.file_size_bytes, sb.disk_bytes);
  context.store = store;
  context.timeout = state.spec.limits.tool_timeout;
  if (!context.workspace.empty() && !std::filesystem::is_directory(context.workspace)) {
    return Status::invalid_argument("the job's workspace " + context.workspace +
                                    " is not a directory");
  }
  if (!context.workspace.empty()) {
    std::error_code ec;
    const std::string real = std::filesystem::canonical(context.workspace, ec).string();
    if (Status s = sandbox::check_workspace_path(ec ? context.workspace : real); !s) {
      return Status::invalid_argument(s.message() +
                                      " (the job's workspace: run it elsewhere or give --workspace)");
    }
  }
  return Status::ok();
}

namespace {
thread_local uint64_t g_walk_bytes = 0;
thread_local uint64_t g_walk_stop = 0;
int add_entry(const char*, const struct stat* st, int, FTW*) {
  g_walk_bytes += static_cast<uint64_t>(st->st_blocks) * 512;
  return g_walk_bytes > g_walk_stop ? 1 : 0;
}
}  // namespace

uint64_t workspace_bytes(const std::string& dir, uint64_t stop_after) {
  g_walk_bytes = 0;
  g_walk_stop = stop_after;
  nftw(dir.c_str(), add_entry, 32, FTW_PHYS | FTW_MOUNT);
  return g_walk_bytes;
}

Result<std::vector<inference::TokenId>> Session::result_tokens(const std::string& tool_call_id,
                                                               const std::string& content) const {
  const size_t assistant = messages_through_last_turn();
  auto before = inference::render_v4_prompt(conversation(assistant));
  inference::Conversation after = conversation(state_.messages.size());
  inference::ChatMessage m;
  m.role = inference::ChatRole::kTool;
  m.content_kind = inference::ContentKind::kText;
  m.tool_call_id = tool_call_id;
  m.content = neutralize(content);
  after.messages.push_back(std::move(m));
  auto after_text = inference::render_v4_prompt(after);
  if (!before || !after_text) {
    return Status::internal("rendering the tool results: " +
                            (!before ? before.status() : after_text.status()).message());
  }
  if (after_text->compare(0, before->size(), *before) != 0) {
    return Status::internal("the rendered conversation changed before the tool results");
  }
  return model_->tokenizer->encode(std::string_view(*after_text).substr(before->size()));
}

asio::awaitable<tools::ToolResult> Session::run_tool(const CallState& call, double& elapsed_ms) {
  const auto start = Clock::now();
  tools::ToolCall tc{call.id, call.name, call.arguments};
  tool_ctx_.on_output = [this, id = call.id, name = call.name](std::string_view stream,
                                                               std::string_view chunk) {
    if (!observer_.on_live) return;
    LiveEvent e{"tool.exec.output.delta", state_.last_seq + 1, std::string(chunk), 0, name, id,
                std::string(stream)};
    observer_.on_live(e);
  };
  auto ex = co_await asio::this_coro::executor;
  asio::cancellation_signal signal;
  tool_signal_ = &signal;
  bool timed_out = false;
  asio::steady_timer timer(ex, state_.spec.limits.tool_timeout);
  timer.async_wait([&](boost::system::error_code ec) {
    if (!ec) {
      timed_out = true;
      signal.emit(asio::cancellation_type::terminal);
    }
  });
  tools::ToolResult result;
  try {
    auto op = asio::co_spawn(ex, registry_.run(std::move(tc), tool_ctx_),
                             asio::bind_cancellation_slot(signal.slot(), asio::use_awaitable));
    result = co_await std::move(op);
  } catch (const std::exception& e) {
    result = tools::ToolResult::error(call.name + ": " + e.what());
  }
  timer.cancel();
  tool_signal_ = nullptr;
  if (timed_out) {
    auto secs =
        std::chrono::duration_cast<std::chrono::milliseconds>(state_.spec.limits.tool_timeout)
            .count() /
        1000.0;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", secs);
    result = tools::ToolResult::error(call.name + ": timed out after " + buf +
                                      " s (limits.tool_timeout)");
  }
  elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  co_return result;
}

asio::awaitable<Result<bool>> Session::settle_calls() {
  if (step_stats_.step != state_.steps) {  // a resumed step: its timing starts here
    step_stats_ = StepStats{};
    step_stats_.step = state_.steps;
    step_start_ = Clock::now();
  }
  for (size_t i = 0; i < state_.calls.size(); ++i) {
    if (stop_ != Stop::kNone) co_return false;
    const CallState call = state_.calls[i];
    if (call.result) continue;
    const bool last = i + 1 == state_.calls.size();
    std::shared_ptr<tools::Tool> tool = registry_.find(call.name);
    const ToolSpec* spec = state_.spec.find_tool(call.name);
    const bool needs_approval = spec && spec->approval == Approval::kAlways;
    ResultRecord record;
    record.call = &call;
    bool run = true;
    if (call.intent && !fresh_intents_.count(call.id)) {
      // Committed by a run that stopped before the result: it may have run, wholly or in part.
      if (!tool || !tool->idempotent()) {
        run = false;
        record.outcome_unknown = true;
        record.result =
            tools::ToolResult::error("outcome unknown: the run stopped while " + call.name +
                                     " was executing; it was not run again because it is not "
                                     "idempotent. Check its effects before "
                                     "calling it again.");
      }
    } else if (!call.intent) {
      // Arguments the tool will refuse are refused now, not after a person approved them.
      Status valid = needs_approval && !call.approved && !call.approval_requested
                         ? registry_.validate(tools::ToolCall{call.id, call.name, call.arguments})
                         : Status::ok();
      if (!valid) {
        run = false;
        record.result = tools::ToolResult::error(valid.message());
      } else if (needs_approval && !call.approved) {
        if (!call.approval_requested) {
          auto c = commit({approval_required_event(call, tool ? tool->description() : "")}, false);
          MNEMO_CO_RETURN_IF_ERROR(co_await std::move(c));
        }
        co_return true;
      } else if (needs_approval && !*call.approved) {
        run = false;
        record.denied = true;
        record.result =
            tools::ToolResult::error("denied: the user did not approve this call of " + call.name);
      } else {
        auto c = commit({intent_event(state_.steps, call)}, false);
        MNEMO_CO_RETURN_IF_ERROR(co_await std::move(c));
      }
    }
    fresh_intents_.erase(call.id);
    if (run) {
      auto op = run_tool(call, record.elapsed_ms);
      record.result = co_await std::move(op);
      step_stats_.tool_ms += record.elapsed_ms;
      // Stopped while running: the result is not the tool's, so it is not committed (a resume
      // decides by the tool's idempotence); a time limit does commit it.
      if (stop_ == Stop::kPause || stop_ == Stop::kCancel) co_return false;
    }
    std::vector<inference::TokenId> tokens;
    if (last && model_) {
      auto t = result_tokens(call.id, record.result.content);
      if (!t) co_return t.status();
      tokens = std::move(t).value();
      record.tokens = tokens;
      record.has_tokens = true;
    }
    const uint32_t every = std::max<uint32_t>(1, state_.spec.durability.snapshot_every);
    // The step's snapshot is written while the next turn starts (commit() orders it before the
    // next event).
    auto c = commit({result_event(record)}, last && state_.steps % every == 0, true);
    MNEMO_CO_RETURN_IF_ERROR(co_await std::move(c));
  }
  step_stats_.total_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - step_start_).count();
  if (observer_.on_step) observer_.on_step(step_stats_);
  co_return false;
}

}  // namespace mnemo::agent::internal
