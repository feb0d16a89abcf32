// Jobs on a remote OpenAI-compatible model: here mnemo's own `mnemo serve` on loopback, a real
// server process spoken to over HTTP by the remote backend (libcurl). The trace persists and
// resumes without KV snapshots (the remote side owns its cache).
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "integration/agent_env.h"
#include "support/loopback_http.h"
#include "support/remote_data.h"

using mnemo::test::AgentEnv;
using mnemo::test::Child;
using mnemo::test::count_role;
using mnemo::test::shell_quote;
namespace json = boost::json;

namespace {

// `mnemo serve` on a free loopback port with its own store; the URL it printed.
struct Server {
  std::unique_ptr<Child> child;
  std::string url;
  // `store`: the store it holds (default: a store of its own beside the environment's).
  explicit Server(const AgentEnv& env, std::string store = "") {
    if (store.empty()) store = env.path("server-store");
    child = std::make_unique<Child>(
        std::vector<std::string>{"/usr/bin/env", "MNEMO_HOME=" + env.home(), MNEMO_BINARY, "serve",
                                 "--listen", "127.0.0.1:0", "--store", store, "--model",
                                 mnemo::test::temp_tiny_model()},
        env.path("serve.out"));
    for (int i = 0; i < 400 && url.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::ifstream out(env.path("serve.out"));
      std::string text((std::istreambuf_iterator<char>(out)), {});
      std::smatch m;
      if (std::regex_search(text, m, std::regex("listening on (http://127\\.0\\.0\\.1:[0-9]+)")))
        url = m[1];
    }
    REQUIRE(!url.empty());
  }
  ~Server() { child->signal(SIGTERM); }
};

// The server names its model after the model's directory.
std::string remote_job(const std::string& url, int steps) {
  const std::string model =
      std::filesystem::path(mnemo::test::temp_tiny_model()).filename().string();
  return "name: remote\nmodel:\n  remote:\n    base_url: " + url + "\n    model: " + model +
         "\n    api_key_env: TEST_KEY\n" +
         "input: Greet.\ntools:\n  - name: echo\n    command: echo hi\n    idempotent: true\n"
         "tool_choice: required\nlimits:\n  max_steps: " +
         std::to_string(steps) + "\n  max_turn_tokens: 96\nsampling:\n  seed: 4\n";
}

mnemo::test::CliResult with_key(const AgentEnv& env, const std::string& args) {
  return mnemo::test::run_cli(args + " -q --store " + shell_quote(env.store()), "",
                              "TEST_KEY=unused MNEMO_HOME=" + shell_quote(env.home()));
}

}  // namespace

TEST_CASE("a job on a remote model calls tools, persists its trace and resumes after a kill",
          "[agent][remote]") {
  AgentEnv env;
  Server server(env);
  const std::string file = env.path("remote.yaml");
  std::ofstream(file) << remote_job(server.url, 4);

  // The key comes from the environment variable the job names, never from the file.
  auto no_key = env.run(file, "nokey");
  CHECK(no_key.status == 1);
  CHECK(no_key.err.find("TEST_KEY is not set") != std::string::npos);
  // Checked before the job exists: nothing to resume, nothing left interrupted.
  CHECK(env.cli("jobs show nokey").status != 0);

  auto r = with_key(env, "run " + shell_quote(file) + " --id straight --workspace " +
                             shell_quote(env.workspace()));
  INFO(r.err);
  REQUIRE(r.status == 0);
  json::value job = env.show("straight");
  CHECK(job.at("status") == "limit");
  CHECK(job.at("steps").to_number<int>() == 4);
  CHECK(count_role(job, "tool") >= 4);
  const json::array& m = job.at("messages").as_array();
  CHECK(m[1].at("tool_calls").at(0).at("function").at("name") == "echo");
  CHECK(std::string(m[2].at("content").as_string()).find("hi") != std::string::npos);

  // Killed after its first committed tool result, resumed: it finishes its four steps.
  Child child(std::vector<std::string>{
      "/usr/bin/env", "TEST_KEY=unused", "MNEMO_HOME=" + env.home(), MNEMO_BINARY, "run", file,
      "--id", "killed", "--store", env.store(), "--workspace", env.workspace()});
  for (int seen = 0; seen < 1;) {
    auto line = child.line();
    REQUIRE(line);
    seen += line->find("->") != std::string::npos;
  }
  child.kill_now();
  child.wait();
  auto resumed = with_key(env, "resume killed");
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  json::value k = env.show("killed");
  CHECK(k.at("status") == "limit");
  CHECK(k.at("steps").to_number<int>() == 4);
}

TEST_CASE("a job on a third-party server's recorded answers: an ignored required call, an error",
          "[agent][remote]") {
  AgentEnv env;
  // llama-server's recorded stream for tool_choice "required" holds no call; its 400 for a prompt
  // past the context. Served for every request as the server sent them.
  std::string answer = "stream";
  mnemo::test::LoopbackHttpServer server([&](mnemo::test::HttpExchange& ex) {
    if (answer == "stream") {
      ex.begin_chunked();
      ex.send_chunked(mnemo::test::remote_data("tool_required.sse"), 97);
      ex.end_chunks();
    } else {
      auto e = mnemo::test::remote_error_data("error_context.json");
      ex.respond(e.status, "application/json", e.body);
    }
  });
  const std::string file = env.path("recorded.yaml");
  std::ofstream(file) << "name: recorded\nmodel:\n  remote:\n    base_url: " << server.base_url()
                      << "\n    model: tiny-long.gguf\ninput: Greet.\ntools:\n  - name: echo\n    "
                         "command: echo hi\n"
                         "tool_choice: required\nlimits:\n  max_steps: 3\n";
  auto r = env.run(file, "recorded", "--json -q");
  INFO(r.err);
  REQUIRE(r.status == 0);
  json::value job = json::parse(r.out);
  // The server did not enforce the call and cut the turn at its length limit: the turn is kept as
  // it came, with no call, and the run ends on a tokens limit.
  CHECK(job.at("status") == "limit");
  CHECK(job.at("limit") == "tokens");
  CHECK(job.at("steps").to_number<int>() == 1);
  const json::value& last = job.at("messages").as_array().back();
  CHECK(last.at("role") == "assistant");
  CHECK(!last.at("reasoning_content").as_string().empty());
  auto sent = json::parse(server.received().at(0).body);
  CHECK(sent.at("tool_choice") == "required");
  CHECK(sent.at("tools").at(0).at("function").at("name") == "echo");
  CHECK(sent.at("messages").at(0).at("content") == "Greet.");

  answer = "error";
  auto failed = env.run(file, "too-long", "-q");
  CHECK(failed.status == 1);
  CHECK(failed.err.find("HTTP 400 exceed_context_size_error") != std::string::npos);
  CHECK(env.show("too-long").at("status") == "failed");

  // The server answers again: resume retries the failed run from its last committed step (here
  // its input) instead of repeating the stored error, and the trace keeps the failure.
  answer = "stream";
  const size_t before = server.received().size();
  auto retried = env.cli("resume too-long");
  INFO(retried.err);
  REQUIRE(retried.status == 0);
  CHECK(retried.err.find("retrying from the last committed step after: model: ") !=
        std::string::npos);
  CHECK(retried.err.find("already finished") == std::string::npos);
  json::value again = env.show("too-long");
  CHECK(again.at("status") == "limit");
  CHECK(again.at("steps").to_number<int>() == 1);
  CHECK(!again.as_object().contains("error"));
  REQUIRE(server.received().size() == before + 1);
  auto resent = json::parse(server.received().back().body);
  REQUIRE(resent.at("messages").as_array().size() == 1);  // the same conversation, not an empty one
  CHECK(resent.at("messages").at(0).at("content") == "Greet.");
  auto logs = env.cli("jobs logs too-long --json");
  REQUIRE(logs.status == 0);
  std::vector<std::string> types;
  std::istringstream in(logs.out);
  for (std::string l; std::getline(in, l);) {
    std::string type(json::parse(l).at("type").as_string());
    if (type != "session.created" && type != "step.committed") types.push_back(type);
  }
  CHECK(types == std::vector<std::string>{"input.message", "error", "run.finished", "run.retried",
                                          "message", "limit", "run.finished"});
  // A finished run is not retried again.
  auto done = env.cli("resume too-long");
  CHECK(done.status == 0);
  CHECK(done.err.find("already finished (limit)") != std::string::npos);
}

TEST_CASE("mnemo run, resume and approve go through the mnemo serve that holds the store",
          "[agent][cli][server]") {
  AgentEnv env;
  Server server(env, env.store());
  REQUIRE(std::filesystem::exists(env.store() + "/operator.sock"));
  CHECK((std::filesystem::status(env.store() + "/operator.sock").permissions() &
         std::filesystem::perms::all) == (std::filesystem::perms::owner_read |
                                          std::filesystem::perms::owner_write));
  // The server's own default model runs the job (the job names none); the CLI prints its progress.
  const std::string file = env.path("through.yaml");
  std::ofstream(file) << "name: through\ninput: Greet.\ntools:\n  - name: echo\n    command: echo "
                         "hi-from-the-server >> calls.log\n    idempotent: true\n"
                         "tool_choice: required\nlimits:\n  max_steps: 2\n  max_turn_tokens: 200\n"
                         "sampling:\n  seed: 3\n";
  auto r = env.run(file, "through");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.find("job through runs in the mnemo serve that holds " + env.store()) !=
        std::string::npos);
  CHECK(r.err.find("step 2  echo") != std::string::npos);
  CHECK(r.err.find("finished: limit after 2 steps") != std::string::npos);
  json::value job = env.show("through");
  CHECK(job.at("status") == "limit");
  CHECK(job.at("steps").to_number<int>() == 2);
  // The tools worked in the CLI's workspace, not in a tenant folder of the server.
  std::ifstream log(env.workspace() + "/calls.log");
  std::string calls((std::istreambuf_iterator<char>(log)), {});
  size_t lines = 0;
  for (size_t at = 0; (at = calls.find("hi-from-the-server\n", at)) != std::string::npos; ++at) ++lines;
  CHECK(lines == static_cast<size_t>(count_role(job, "tool")));
  CHECK(lines >= 2);
  auto again = env.cli("resume through");
  CHECK(again.status == 0);
  CHECK(again.err.find("job through already finished (limit)") != std::string::npos);

  // A call waiting for approval: run ends with 3, approve continues it through the server.
  const std::string careful = env.path("careful.yaml");
  std::ofstream(careful) << "name: careful\ninput: Greet.\ntools:\n  - name: echo\n    command: "
                            "echo approved >> approved.log\n    approval: always\n"
                            "tool_choice: required\nlimits:\n  max_steps: 1\n  max_turn_tokens: 200\n"
                            "sampling:\n  seed: 3\n";
  auto waiting = env.run(careful, "careful");
  INFO(waiting.err);
  REQUIRE(waiting.status == 3);
  json::value w = env.show("careful");
  REQUIRE(w.at("pending_approvals").as_array().size() == 1);
  const std::string call(w.at("pending_approvals").at(0).at("call_id").as_string());
  auto approved = env.cli("jobs approve careful " + call);
  INFO(approved.err);
  CHECK(approved.status == 0);
  CHECK(env.show("careful").at("status") == "limit");
  CHECK(std::filesystem::exists(env.workspace() + "/approved.log"));

  // A job that fails in the server fails in the CLI too, with the error.
  const std::string down = env.path("down.yaml");
  std::ofstream(down) << "name: down\nmodel:\n  remote:\n    base_url: http://127.0.0.1:9/v1\n"
                         "    model: m\ninput: Greet.\n";
  auto failed = env.run(down, "down");
  CHECK(failed.status == 1);
  CHECK(failed.err.find("job down failed: model: ") != std::string::npos);
  CHECK(env.show("down").at("status") == "failed");

  // Another user cannot use the channel (the socket is the owner's, and the server checks the
  // peer's credentials).
  if (::geteuid() != 0) return;
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", (env.store() + "/operator.sock").c_str());
    const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::_exit(connected ? 1 : 0);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  CHECK(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);
}
