#pragma once
// The Tool interface the agent loop calls: a declared name, description and JSON-schema parameters,
// and an asynchronous run on Boost.Asio awaitables that honours the coroutine's cancellation slot.
#include <mnemo/memory/store.h>
#include <mnemo/sandbox/policy.h>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <cstddef>
#include <string>
#include <string_view>

namespace mnemo::tools {

// What goes to the prompt when a tool's output is larger than this, by default (bytes).
inline constexpr size_t kDefaultOutputCap = 16u << 10;

struct ToolCall {
  std::string id;         // derived by the agent from (session, step, index)
  std::string name;
  std::string arguments;  // JSON text of an object
};

struct ToolResult {
  bool ok = true;
  std::string content;      // what goes to the prompt (capped, with a marker when cut)
  bool truncated = false;   // content was cut; full_output holds all of it
  std::string full_output;  // the whole output when truncated, else empty (for storage)
  std::optional<int> exit_status;  // a command's exit status (shell convention), when one ran

  static ToolResult error(std::string message) {
    return {false, std::move(message), false, {}, std::nullopt};
  }
  // The output kept whole when it fits `cap`, else cut with a marker (see output_cap.h).
  static ToolResult success(std::string output, size_t cap);
};

struct ToolContext {
  std::string session_id;
  std::string workspace;              // host directory the file tools are confined to
  sandbox::Policy policy;             // what `shell` runs under; its workspace is set from above
  memory::Store* store = nullptr;     // for search_history; null: the tool reports it has none
  std::chrono::milliseconds timeout{60000};  // per call, on top of the sandbox's own timeout
  size_t output_cap = kDefaultOutputCap;
  // Called with output as a sandboxed command produces it (live progress; the result is still the
  // whole output). Runs on the caller's executor. Optional.
  std::function<void(std::string_view stream, std::string_view chunk)> on_output;
};

class Tool {
 public:
  virtual ~Tool() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view description() const = 0;
  // The JSON schema of the arguments object, as JSON text (OpenAI `function.parameters`).
  virtual std::string_view parameters() const = 0;
  // Safe to run again when a crash left its outcome unknown.
  virtual bool idempotent() const = 0;
  // Arguments are already validated against parameters(). Cancellation (terminal) through the
  // awaiting coroutine's slot ends the run promptly (kills the process, aborts the transfer) with
  // an error result. Failures are error results, never exceptions.
  virtual boost::asio::awaitable<ToolResult> run(ToolCall call, ToolContext& ctx) = 0;
};

}  // namespace mnemo::tools
