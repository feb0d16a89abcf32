// The runner's ordinary behaviour: status, environment, workspace, streaming, async concurrency.
#include <sys/stat.h>
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <fstream>

#include "sandbox/sandbox_test_util.h"

using namespace mnemo;
using namespace mnemo::test;

TEST_CASE("a command's exit status and output come back") {
  Workspace ws;
  auto r = sandbox::run(request(ws, {"sh", "-c", "echo out; echo err >&2; exit 7"}));
  REQUIRE(r);
  CHECK(r->exit_status == 7);
  CHECK(r->reason == sandbox::ExitReason::kExited);
  CHECK(r->stdout_data == "out\n");
  CHECK(r->stderr_data == "err\n");
  CHECK_FALSE(r->stdout_truncated);
}

TEST_CASE("a command killed by a signal reports 128 plus the signal") {
  Workspace ws;
  auto r = sandbox::run(request(ws, {"sh", "-c", "kill -TERM $$"}));
  REQUIRE(r);
  CHECK(r->reason == sandbox::ExitReason::kSignaled);
  CHECK(r->exit_status == 128 + SIGTERM);
}

TEST_CASE("the environment is scrubbed to the allowlist and the command starts in /workspace") {
  setenv("MNEMO_TEST_SECRET", "hunter2", 1);
  Workspace ws;
  auto r = sandbox::run(request(ws, {"/usr/bin/env"}));
  REQUIRE(r);
  CHECK(r->stdout_data.find("hunter2") == std::string::npos);
  CHECK(r->stdout_data.find("HOME=/workspace\n") != std::string::npos);
  CHECK(r->stdout_data.find("PATH=") != std::string::npos);
  size_t lines = std::count(r->stdout_data.begin(), r->stdout_data.end(), '\n');
  CHECK(lines == 4);  // PATH, HOME, LANG, TERM
  auto pwd = sandbox::run(request(ws, {"pwd"}));
  REQUIRE(pwd);
  CHECK(pwd->stdout_data == "/workspace\n");
}

TEST_CASE("the command runs as an unprivileged uid and its files belong to the workspace owner") {
  Workspace ws;
  auto r = sandbox::run(request(ws, {"sh", "-c", "echo hi > /workspace/made; id -u"}));
  REQUIRE(r);
  INFO(r->stderr_data);
  REQUIRE(r->exit_status == 0);
  CHECK(r->stdout_data == "1000\n");  // the inner uid, never root
  struct stat ws_st {}, st {};
  REQUIRE(stat(ws.path.c_str(), &ws_st) == 0);
  REQUIRE(stat((ws.path / "made").c_str(), &st) == 0);
  CHECK(slurp(ws.path / "made") == "hi\n");
  // On disk, as the workspace's owner (idmapped as root; our own uid otherwise): no owner change.
  CHECK(st.st_uid == ws_st.st_uid);
  CHECK(ws_st.st_uid == ::geteuid());
}

TEST_CASE("a workspace under a 0700 parent is read and written with no change of owner") {
  // What mktemp -d and /root look like: the parent is private, the workspace root-owned 0755.
  const fs::path parent = fs::temp_directory_path() / unique_token("private");
  const fs::path dir = parent / "project";
  fs::create_directories(dir / "src");
  fs::permissions(parent, fs::perms::owner_all);
  fs::permissions(dir, static_cast<fs::perms>(0755));
  std::ofstream(dir / "src" / "main.c") << "int main;\n";
  struct stat before {};
  REQUIRE(stat((dir / "src" / "main.c").c_str(), &before) == 0);
  sandbox::ExecRequest req;
  req.argv = {"sh", "-c", "cat src/main.c && echo more >> src/main.c && mkdir out && echo x > out/y"};
  req.policy.workspace = dir.string();
  auto r = sandbox::run(std::move(req));
  REQUIRE(r);
  INFO(r->stderr_data);
  CHECK(r->exit_status == 0);
  CHECK(r->stdout_data == "int main;\n");
  CHECK(r->stderr_data.empty());  // nothing on stderr when it works
  struct stat after {}, made {}, top {};
  REQUIRE(stat((dir / "src" / "main.c").c_str(), &after) == 0);
  REQUIRE(stat((dir / "out" / "y").c_str(), &made) == 0);
  REQUIRE(stat(dir.c_str(), &top) == 0);
  CHECK(after.st_uid == before.st_uid);
  CHECK(after.st_gid == before.st_gid);
  CHECK(made.st_uid == ::geteuid());
  CHECK(top.st_uid == ::geteuid());
  CHECK(slurp(dir / "src" / "main.c") == "int main;\nmore\n");
  std::error_code ec;
  fs::remove_all(parent, ec);
}

TEST_CASE("system directories, the host root and the home directory are refused as workspaces") {
  const char* home = getenv("HOME");
  std::vector<std::string> refused = {"/", "/etc", "/usr", "/usr/lib", "/root", "/home", "/tmp",
                                      "/var", "/boot", "/proc/self"};
  if (home && *home) refused.push_back(home);
  for (const std::string& dir : refused) {
    if (!fs::is_directory(dir)) continue;
    INFO(dir);
    sandbox::ExecRequest req;
    req.argv = {"true"};
    req.policy.workspace = dir;
    auto r = sandbox::run(std::move(req));
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains("workspace"));
  }
  // /etc/shadow's owner never changed (the old adopt step chowned the workspace tree).
  struct stat st {};
  if (stat("/etc/shadow", &st) == 0) CHECK(st.st_uid == 0);
}

TEST_CASE("a missing command exits 127 with a message") {
  Workspace ws;
  auto r = sandbox::run(request(ws, {"no-such-command-mnemo"}));
  REQUIRE(r);
  CHECK(r->exit_status == 127);
  CHECK(r->stderr_data.find("no-such-command-mnemo") != std::string::npos);
}

TEST_CASE("a missing workspace is refused with a message naming it") {
  sandbox::ExecRequest req;
  req.argv = {"true"};
  req.policy.workspace = "/nonexistent/mnemo-ws";
  auto r = sandbox::run(req);
  REQUIRE_FALSE(r);
  CHECK(r.status().message().find("/nonexistent/mnemo-ws") != std::string::npos);
}

TEST_CASE("a relative read-only path is refused") {
  Workspace ws;
  auto req = request(ws, {"true"});
  req.policy.read_only_paths = {"relative/path"};
  auto r = sandbox::run(req);
  REQUIRE_FALSE(r);
  CHECK(r.status().message().find("not absolute") != std::string::npos);
}

TEST_CASE("output is streamed to the callback as it arrives") {
  Workspace ws;
  auto req = request(ws, {"sh", "-c", "echo one; echo two >&2"});
  std::string seen_out, seen_err;
  req.on_output = [&](sandbox::OutputStream s, std::string_view d) {
    (s == sandbox::OutputStream::kStdout ? seen_out : seen_err).append(d);
  };
  auto r = sandbox::run(req);
  REQUIRE(r);
  CHECK(seen_out == "one\n");
  CHECK(seen_err == "two\n");
}

TEST_CASE("two sandboxes run concurrently on one io_context") {
  Workspace ws;
  boost::asio::io_context io;
  sandbox::Runner runner(io.get_executor());
  int done = 0;
  // Each command waits for the other's file: both finish only when both run at the same time (one
  // after the other, the first would wait until its timeout).
  const char* scripts[] = {"touch a; while [ ! -e b ]; do sleep 0.01; done",
                           "touch b; while [ ! -e a ]; do sleep 0.01; done"};
  for (const char* script : scripts) {
    auto req = request(ws, {"sh", "-c", script});
    req.policy.limits.timeout = std::chrono::seconds(60);
    runner.async_run(std::move(req), [&](Result<sandbox::ExecResult> r) {
      REQUIRE(r);
      CHECK(r->reason == sandbox::ExitReason::kExited);
      CHECK(r->exit_status == 0);
      ++done;
    });
  }
  io.run();
  CHECK(done == 2);
}

TEST_CASE("mode none runs the command without isolation and says so") {
  Workspace ws;
  auto req = request(ws, {"sh", "-c", "pwd"});
  req.policy.mode = sandbox::SandboxMode::kNone;
  auto r = sandbox::run(req);
  REQUIRE(r);
  CHECK(r->exit_status == 0);
  CHECK(r->stdout_data == fs::canonical(ws.path).string() + "\n");
  CHECK(r->warning.find("WITHOUT isolation") != std::string::npos);
}
