#include <mnemo/base/json_text.h>
#include <mnemo/tools/builtin_tools.h>

#include <catch2/catch.hpp>
#include <thread>

#include "support/processes.h"
#include "tools/tools_test_util.h"

using namespace mnemo;
using namespace mnemo::tools;
using namespace std::chrono_literals;

namespace {

using test::count_exact;
using test::count_processes;

ToolRegistry builtins() {
  ToolRegistry reg;
  REQUIRE(add_builtin_tools(reg));
  return reg;
}

std::string command_args(const std::string& command) {
  return R"({"command": )" + json::quote(command) + "}";
}

}  // namespace

TEST_CASE("shell runs bash in the sandbox with the workspace and reports status, stdout, stderr") {
  ToolRegistry reg = builtins();
  test::TempTree ws("shell", true);
  ToolContext ctx = test::context_for(ws.path);
  ToolResult r = test::run_call(reg, ctx, "shell",
                                command_args("echo hi > note.txt; pwd; echo oops >&2; exit 3"));
  CHECK(r.ok);
  CHECK(r.content == "exit status: 3\nstdout:\n/workspace\nstderr:\noops\n");
  CHECK(test::slurp(ws.path / "note.txt") == "hi\n");
  // The host's /etc is not in the sandbox.
  r = test::run_call(reg, ctx, "shell", command_args("cat /etc/hostname 2>/dev/null; ls /etc/passwd"));
  CHECK(r.content.find("exit status: 2") == 0);
}

TEST_CASE("shell output over the cap is cut with a marker and returned whole for storage") {
  ToolRegistry reg = builtins();
  test::TempTree ws("shell-cap", true);
  ToolContext ctx = test::context_for(ws.path);
  ctx.output_cap = 2000;
  ToolResult r = test::run_call(reg, ctx, "shell", command_args("seq 1 20000; echo done >&2"));
  CHECK(r.ok);
  CHECK(r.truncated);
  CHECK(r.content.size() < 2300);
  CHECK(r.content.find("bytes truncated; full output stored") != std::string::npos);
  CHECK(r.content.find("\n20000\n") != std::string::npos);
  CHECK(r.content.find("stderr:\ndone\n") != std::string::npos);
  CHECK(r.full_output.find("\n12345\n") != std::string::npos);
  CHECK(r.full_output.size() > 100000);
}

TEST_CASE("the per-tool timeout kills a shell command and says so") {
  ToolRegistry reg = builtins();
  test::TempTree ws("shell-timeout", true);
  ToolContext ctx = test::context_for(ws.path);
  ctx.timeout = 300ms;
  auto start = std::chrono::steady_clock::now();
  ToolResult r = test::run_call(reg, ctx, "shell", command_args("sleep 20"));
  // Killed by the timeout, not ended by the sleep (the bound is the sleep's own length, so a slow
  // machine cannot fail it); the message says which timeout it was.
  CHECK(std::chrono::steady_clock::now() - start < 19s);
  CHECK_FALSE(r.ok);
  CHECK(r.content.rfind("exit status: 124 (timed out after 300ms", 0) == 0);
}

TEST_CASE("cancelling a shell call kills the sandboxed command promptly") {
  ToolRegistry reg = builtins();
  test::TempTree ws("shell-cancel", true);
  ToolContext ctx = test::context_for(ws.path);
  ctx.timeout = 60s;
  ctx.policy.limits.timeout = 60s;
  const std::string token = test::unique_name("sleeper");
  // Two commands, so bash forks the sleep instead of exec'ing it: the bash carries the token in
  // its argv, the sleep a duration unique to this process.
  const std::string seconds = "30." + std::to_string(getpid());
  std::string command = "sleep " + seconds + "; echo " + token;
  auto start = std::chrono::steady_clock::now();
  // Cancelled once the forked sleep itself runs, so the kill has both processes to reach.
  ToolResult r = test::run_call(reg, ctx, "shell", command_args(command), std::nullopt,
                                [&] { return count_exact({"sleep", seconds}) == 1; });
  // Well before the sleep's own 30 s end (the bound is generous: the point is that it was killed).
  CHECK(std::chrono::steady_clock::now() - start < 20s);
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("cancelled") != std::string::npos);
  CHECK(count_processes(token) == 0);
  CHECK(count_processes(seconds) == 0);
}

TEST_CASE("cancelling a shell command that exec'd itself away still kills it") {
  ToolRegistry reg = builtins();
  test::TempTree ws("shell-cancel-exec", true);
  ToolContext ctx = test::context_for(ws.path);
  ctx.policy.limits.timeout = 60s;
  ctx.timeout = 60s;
  auto start = std::chrono::steady_clock::now();
  // A duration unique to this process, to find the sleep by its command line.
  const std::string seconds = "3117." + std::to_string(getpid());
  ToolResult r = test::run_call(reg, ctx, "shell", command_args("exec sleep " + seconds),
                                std::nullopt, [&] { return count_exact({"sleep", seconds}) == 1; });
  CHECK(std::chrono::steady_clock::now() - start < 20s);  // the sleep alone lasts 52 minutes
  CHECK(r.content.find("cancelled") != std::string::npos);
  CHECK(count_processes(seconds) == 0);
}
