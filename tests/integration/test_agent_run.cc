// `mnemo run`, `mnemo resume` and `mnemo jobs ...` as a user drives them: real processes, a real
// store, tools in the sandbox.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "integration/agent_env.h"

using mnemo::test::AgentEnv;
using mnemo::test::Child;
using mnemo::test::count_role;
using mnemo::test::normalized_messages;
using mnemo::test::shell_quote;
namespace json = boost::json;

namespace {

const char* kEchoJob = R"(instructions: You answer with the echo tool.
input: "Greet {{inputs.who}}."
inputs:
  who: world
tools:
  - name: echo
    description: Print a greeting.
    command: 'echo "hello from $MNEMO_CALL_ID"'
    idempotent: true
tool_choice: required
limits:
  max_steps: 3
  max_turn_tokens: 96
sampling:
  temperature: 0.9
  seed: 11
)";

std::string str(const json::value& v) { return std::string(v.as_string()); }

}  // namespace

TEST_CASE("a forced-tool job runs end to end and jobs show --json gives the conversation",
          "[agent]") {
  AgentEnv env;
  auto r = env.run(env.job("greet", kEchoJob), "greet-1");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.find("step 1  echo {}") != std::string::npos);
  CHECK(r.err.find("finished: limit after 3 steps") != std::string::npos);

  json::value job = env.show("greet-1");
  CHECK(job.at("id") == "greet-1");
  CHECK(job.at("status") == "limit");
  CHECK(job.at("limit") == "steps");
  CHECK(job.at("steps").to_number<int>() == 3);
  const json::array& m = job.at("messages").as_array();
  REQUIRE(m.size() >= 8);
  CHECK(m[0].at("role") == "system");
  CHECK(m[0].at("content") == "You answer with the echo tool.");
  CHECK(m[1].at("role") == "user");
  CHECK(m[1].at("content") == "Greet world.");
  CHECK(m[2].at("role") == "assistant");
  const json::array& calls = m[2].at("tool_calls").as_array();
  REQUIRE(!calls.empty());
  const std::string id = str(calls[0].at("id"));
  CHECK(std::regex_match(id, std::regex("call_[0-9a-f]{8}_1_0")));
  CHECK(calls[0].at("type") == "function");
  CHECK(calls[0].at("function").at("name") == "echo");
  CHECK(calls[0].at("function").at("arguments") == "{}");
  CHECK(m[3].at("role") == "tool");
  CHECK(str(m[3].at("tool_call_id")) == id);
  // The tool ran in the sandbox and saw its call id.
  CHECK(str(m[3].at("content")).find("hello from " + id) != std::string::npos);
  CHECK(count_role(job, "tool") >= 3);

  auto list = env.cli("jobs list");
  CHECK(list.status == 0);
  CHECK(list.out.find("greet-1") != std::string::npos);
  CHECK(list.out.find("limit") != std::string::npos);
  auto logs = env.cli("jobs logs greet-1");
  CHECK(logs.status == 0);
  for (const char* type : {"session.created", "input.message", "message", "tool.intent",
                           "tool.result", "step.committed", "limit", "run.finished"}) {
    CHECK(logs.out.find(type) != std::string::npos);
  }
  // A finished job resumes to itself.
  auto again = env.cli("resume greet-1 --json -q");
  CHECK(again.status == 0);
  CHECK(json::parse(again.out).at("steps").to_number<int>() == 3);

  // A new user message after tool results the model never answered: a new run of three steps.
  auto more = env.cli("resume greet-1 --message 'And once more.' --json -q");
  INFO(more.err);
  REQUIRE(more.status == 0);
  json::value cont = json::parse(more.out);
  CHECK(cont.at("steps").to_number<int>() == 6);
  mnemo::test::check_resumed_from_snapshots(env, "greet-1", 1);
  CHECK(cont.at("limit") == "steps");
  bool seen = false;
  for (const auto& msg : cont.at("messages").as_array()) {
    if (msg.at("role") == "user" && msg.at("content") == "And once more.") seen = true;
  }
  CHECK(seen);
  CHECK(env.cli("store verify").status == 0);
}

TEST_CASE("job commands: a fresh home lists no jobs, ids by unique prefix, resume of a finished job",
          "[agent][cli]") {
  AgentEnv env;
  // A fresh MNEMO_HOME (no store yet): an empty list, not an error.
  auto fresh = mnemo::test::run_cli("jobs list", "", "MNEMO_HOME=" + shell_quote(env.path("fresh-home")));
  INFO(fresh.err);
  CHECK(fresh.status == 0);
  CHECK(fresh.out.rfind("ID", 0) == 0);
  auto fresh_json =
      mnemo::test::run_cli("jobs list --json", "", "MNEMO_HOME=" + shell_quote(env.path("fresh-home")));
  CHECK(fresh_json.status == 0);
  CHECK(fresh_json.out == "[]\n");

  const std::string job = env.job("greet", kEchoJob);
  REQUIRE(env.run(job, "prefix-test-123", "-q").status == 0);
  // A unique prefix names the job.
  auto shown = env.cli("jobs show prefix-te --json");
  INFO(shown.err);
  REQUIRE(shown.status == 0);
  CHECK(json::parse(shown.out).at("id") == "prefix-test-123");
  // Resuming a finished job says so.
  auto again = env.cli("resume prefix-test");
  CHECK(again.status == 0);
  CHECK(again.err.find("job prefix-test-123 already finished") != std::string::npos);
  // Two jobs share the prefix: an error that lists both.
  REQUIRE(env.run(job, "prefix-test-456", "-q").status == 0);
  auto ambiguous = env.cli("jobs show prefix-te");
  CHECK(ambiguous.status == 1);
  CHECK(ambiguous.err.find("prefix-test-123") != std::string::npos);
  CHECK(ambiguous.err.find("prefix-test-456") != std::string::npos);
  // An exact id is never ambiguous.
  CHECK(env.cli("jobs logs prefix-test-456").status == 0);
}

TEST_CASE("job commands: tenants, delete, and a job running in another process", "[agent][cli]") {
  AgentEnv env;
  const std::string job = env.job("greet", kEchoJob);
  // The same id for the local tenant and for acme: two jobs, each resolved within its tenant.
  REQUIRE(env.run(job, "twin-1", "-q").status == 0);
  REQUIRE(env.run(job, "twin-1", "-q --tenant acme").status == 0);
  auto local = env.cli("jobs list --json");
  auto acme = env.cli("jobs list --json --tenant acme");
  REQUIRE(local.status == 0);
  REQUIRE(acme.status == 0);
  REQUIRE(json::parse(local.out).as_array().size() == 1);
  REQUIRE(json::parse(acme.out).as_array().size() == 1);
  CHECK(json::parse(acme.out).at(0).at("id") == "twin-1");
  auto shown = env.cli("jobs show twin --tenant acme --json");
  INFO(shown.err);
  REQUIRE(shown.status == 0);
  CHECK(json::parse(shown.out).at("id") == "twin-1");
  CHECK(env.cli("jobs show twin-1 --tenant globex").status == 1);

  // Deleting acme's job removes its events and snapshots (and sweeps chunks only it used); the
  // local one stays whole.
  auto before = json::parse(env.cli("store stats --json").out);
  auto deleted = env.cli("jobs delete twin --tenant acme");
  INFO(deleted.err);
  REQUIRE(deleted.status == 0);
  CHECK(deleted.out.find("deleted acme:twin-1") == 0);
  CHECK(json::parse(env.cli("jobs list --json --tenant acme").out).as_array().empty());
  auto after = json::parse(env.cli("store stats --json").out);
  CHECK(after.at("sessions").to_number<int>() == before.at("sessions").to_number<int>() - 1);
  CHECK(after.at("snapshots").to_number<int>() < before.at("snapshots").to_number<int>());
  CHECK(after.at("events").to_number<int>() < before.at("events").to_number<int>());
  CHECK(after.at("chunks").to_number<int>() <= before.at("chunks").to_number<int>());
  CHECK(env.cli("store verify").status == 0);
  CHECK(env.show("twin-1").at("status") == "limit");
  CHECK(env.cli("jobs delete twin-1 --tenant acme").status == 1);  // gone

  // A job that another process is running lists as running (not interrupted) and cannot be
  // deleted; killed, it is interrupted.
  std::string body = kEchoJob;
  body.replace(body.find("max_steps: 3"), 12, "max_steps: 500");
  const std::string slow = env.job("slow", body);
  Child child(env.argv({"run", slow, "--id", "busy", "--workspace", env.workspace()}));
  for (bool seen = false; !seen;) {
    auto line = child.line();
    REQUIRE(line);
    seen = line->find("->") != std::string::npos;
  }
  auto listed = json::parse(env.cli("jobs list --json").out);
  std::string status;
  for (const json::value& j : listed.as_array())
    if (j.at("id") == "busy") status = std::string(j.at("status").as_string());
  CHECK(status == "running");
  CHECK(env.cli("jobs show busy").out.find("status:    running") != std::string::npos);
  auto refused = env.cli("jobs delete busy");
  CHECK(refused.status == 1);
  CHECK(refused.err.find("is running") != std::string::npos);
  child.kill_now();
  child.wait();
  CHECK(env.show("busy").at("status") == "interrupted");
}

TEST_CASE("a seeded job gives the same transcript every time", "[agent]") {
  AgentEnv env;
  std::string body = kEchoJob;
  body.replace(body.find("$MNEMO_CALL_ID"), 14, "the sandbox");
  const std::string job = env.job("same", body);
  REQUIRE(env.run(job, "same-a", "-q").status == 0);
  REQUIRE(env.run(job, "same-b", "-q").status == 0);
  json::value a = env.show("same-a"), b = env.show("same-b");
  CHECK(normalized_messages(a) == normalized_messages(b));
  CHECK(a.at("generated_tokens") == b.at("generated_tokens"));
  // Ids come from (session, step, index): different jobs, different ids.
  CHECK(a.at("messages").at(2).at("tool_calls").at(0).at("id") !=
        b.at("messages").at(2).at("tool_calls").at(0).at("id"));
}

TEST_CASE("approval is never asked for arguments the tool will refuse", "[agent]") {
  AgentEnv env;
  // Decoding holds the note to 12 characters (maxLength); no note of 12 characters matches the
  // pattern, which decoding does not enforce: the call is refused at once instead of waiting for
  // a person to approve what would then be refused, and a notice names the keyword.
  const std::string job = env.job("refused", R"(input: Touch the marker.
tools:
  - name: touch
    description: Create a marker file.
    command: 'echo "$MNEMO_CALL_ID" >> marker'
    approval: always
    parameters:
      type: object
      properties:
        note: {type: string, maxLength: 12, pattern: "^x{13}$"}
      required: [note]
tool_choice: touch
limits:
  max_steps: 1
  max_turn_tokens: 256
sampling:
  seed: 3
)");
  auto r = env.run(job, "refused");
  INFO(r.err);
  CHECK(r.status == 0);  // ended by its step limit (exit 0), never waiting (3)
  CHECK(r.err.find("waiting for approval") == std::string::npos);
  CHECK(r.err.find("notice: schema keywords not enforced while decoding (each call is checked "
                   "against them before it runs): touch: parameters.properties.note.pattern") !=
        std::string::npos);
  json::value j = env.show("refused");
  CHECK(j.at("pending_approvals").as_array().empty());
  const json::array& m = j.at("messages").as_array();
  REQUIRE(m.size() >= 2);
  CHECK(m.back().at("role") == "tool");
  CHECK(str(m.back().at("content")).find("must match the pattern") != std::string::npos);
  // The argument the model wrote kept to maxLength.
  const json::value& call = m[m.size() - 2].at("tool_calls").at(0);
  json::value args = json::parse(str(call.at("function").at("arguments")));
  const std::string note = str(args.at("note"));
  size_t chars = 0;
  for (char c : note) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  CHECK(chars <= 12);
  CHECK(!std::filesystem::exists(env.workspace() + "/marker"));
  auto logs = env.cli("jobs logs refused --json");
  CHECK(logs.out.find("tool.approval_required") == std::string::npos);
}

TEST_CASE("approval: a call waits durably, approve runs it and deny refuses it", "[agent]") {
  AgentEnv env;
  const std::string job = env.job("careful", R"(input: Touch the marker.
tools:
  - name: touch
    description: Create a marker file.
    command: 'echo "$MNEMO_CALL_ID" >> marker'
    approval: always
tool_choice: touch
limits:
  max_steps: 2
  max_turn_tokens: 96
sampling:
  seed: 3
)");
  auto r = env.run(job, "careful");
  INFO(r.err);
  REQUIRE(r.status == 3);
  CHECK(r.err.find("waiting for approval: touch") != std::string::npos);
  json::value j = env.show("careful");
  CHECK(j.at("status") == "waiting_approval");
  REQUIRE(j.at("pending_approvals").as_array().size() == 1);
  const std::string call = str(j.at("pending_approvals").at(0).at("call_id"));
  CHECK(!std::filesystem::exists(env.workspace() + "/marker"));

  // A second process (a restart) approves: the call runs, and the next turn's call waits again.
  auto wrong = env.cli("jobs approve careful call_nope");
  CHECK(wrong.status == 1);
  CHECK(wrong.err.find("waiting: " + call) != std::string::npos);
  auto ok = env.cli("jobs approve careful " + call + " -q");
  INFO(ok.err);
  CHECK(ok.status == 3);
  std::ifstream marker(env.workspace() + "/marker");
  std::string line;
  std::getline(marker, line);
  CHECK(line == call);
  j = env.show("careful");
  REQUIRE(j.at("pending_approvals").as_array().size() == 1);
  const std::string second = str(j.at("pending_approvals").at(0).at("call_id"));
  CHECK(second != call);

  // Denied: the model gets a refusal and the command never runs.
  auto denied = env.cli("jobs deny careful " + second + " --json -q");
  CHECK(denied.status == 0);
  j = json::parse(denied.out);
  CHECK(j.at("status") == "limit");
  const json::array& m = j.at("messages").as_array();
  CHECK(str(m.back().at("content")).find("denied") != std::string::npos);
  std::ifstream again(env.workspace() + "/marker");
  int lines = 0;
  for (std::string l; std::getline(again, l);) ++lines;
  CHECK(lines == 1);
}

TEST_CASE("cancel: a waiting job, and a job running in another process", "[agent]") {
  AgentEnv env;
  const std::string slow = env.job("slow", R"(input: Wait.
tools:
  - name: wait
    description: Wait a while.
    command: sleep 0.3
tool_choice: required
limits:
  max_steps: 200
  max_turn_tokens: 96
sampling:
  seed: 1
)");
  Child running(env.argv({"run", slow, "--id", "slow", "--workspace", env.workspace()}));
  for (int seen = 0; seen < 2;) {
    auto line = running.line();
    REQUIRE(line);
    seen += line->find("step ") != std::string::npos;
  }
  auto cancel = env.cli("jobs cancel slow");
  INFO(cancel.err);
  CHECK(cancel.status == 0);
  CHECK(running.finish() == 4);
  json::value j = env.show("slow");
  CHECK(j.at("status") == "cancelled");
  auto twice = env.cli("jobs cancel slow");
  CHECK(twice.status == 1);
  CHECK(twice.err.find("already finished") != std::string::npos);
}

TEST_CASE("limits: a tool's timeout, the job's timeout and the context length", "[agent]") {
  AgentEnv env;
  SECTION("tool timeout is an error result for the model") {
    auto r = env.run(env.job("sleepy", R"(input: Sleep.
tools:
  - name: nap
    command: sleep 5
tool_choice: required
limits:
  max_steps: 1
  max_turn_tokens: 96
  tool_timeout: 300ms
)"),
                     "sleepy", "--json -q");
    INFO(r.err);
    REQUIRE(r.status == 0);
    json::value j = json::parse(r.out);
    CHECK(str(j.at("messages").at(2).at("content")).find("timed out after 0.3 s") !=
          std::string::npos);
  }
  SECTION("the job's wall clock") {
    auto r = env.run(env.job("late", R"(input: Sleep.
tools:
  - name: nap
    command: sleep 5
tool_choice: required
limits:
  max_steps: 5
  max_turn_tokens: 96
  timeout: 1s
)"),
                     "late", "--json -q");
    INFO(r.err);
    REQUIRE(r.status == 0);
    json::value j = json::parse(r.out);
    CHECK(j.at("status") == "limit");
    CHECK(j.at("limit") == "time");
  }
  SECTION("the model's context ends the job with a limit, not a crash") {
    // The same model with a 400-token context.
    const std::string small = env.path("small-model");
    std::filesystem::create_directories(small);
    for (const auto& e : std::filesystem::directory_iterator(mnemo::test::temp_tiny_model())) {
      std::filesystem::create_symlink(e.path(), small + "/" + e.path().filename().string());
    }
    std::filesystem::remove(small + "/config.json");
    std::ifstream in(mnemo::test::temp_tiny_model() + "/config.json");
    std::stringstream ss;
    ss << in.rdbuf();
    json::value config = json::parse(ss.str());
    config.as_object()["max_position_embeddings"] = 400;
    std::ofstream(small + "/config.json") << json::serialize(config);
    const std::string file = env.path("ctx.yaml");
    std::ofstream(file) << "name: ctx\nmodel:\n  embedded:\n    dir: " << small << R"(
input: Loop.
tools:
  - name: echo
    command: echo hi
tool_choice: required
limits:
  max_steps: 100
  max_turn_tokens: 96
)";
    auto r = env.run(file, "ctx", "--json -q");
    INFO(r.err);
    REQUIRE(r.status == 0);
    json::value j = json::parse(r.out);
    CHECK(j.at("status") == "limit");
    CHECK(j.at("limit") == "context");
    CHECK(j.at("steps").to_number<int>() < 100);
  }
}

TEST_CASE("bad jobs and bad commands get one clear line", "[agent]") {
  AgentEnv env;
  auto unknown = env.run(env.job("nope", "input: x\ntools:\n  - frobnicate\n"), "nope");
  CHECK(unknown.status == 1);
  CHECK(unknown.err.find("unknown tool frobnicate") != std::string::npos);
  auto missing = env.cli("resume no-such-job");
  CHECK(missing.status == 1);
  CHECK(missing.err.find("no-such-job") != std::string::npos);
  auto bad_yaml = env.run(env.job("bad", "input: x\nlimits:\n  max_steps: -3\n"), "bad");
  CHECK(bad_yaml.status == 1);
  CHECK(bad_yaml.err.find("bad.yaml:7:14: limits.max_steps must be a positive integer") !=
        std::string::npos);
  const std::string ok = env.job("twice", kEchoJob);
  REQUIRE(env.run(ok, "twice", "-q").status == 0);
  auto dup = env.run(ok, "twice", "-q");
  CHECK(dup.status == 1);
  CHECK(dup.err.find("job twice already exists") != std::string::npos);
  auto input = env.run(ok, "inputs", "--input whom=x");
  CHECK(input.status == 1);
  CHECK(input.err.find("unknown input whom") != std::string::npos);
}

TEST_CASE("Ctrl-C pauses a job and resume continues it to the same end", "[agent]") {
  AgentEnv env;
  const std::string job = env.job("pause", R"(input: Work.
tools:
  - name: work
    command: sleep 0.1; echo done
    idempotent: true
tool_choice: required
limits:
  max_steps: 6
  max_turn_tokens: 96
sampling:
  temperature: 0.7
  seed: 9
)");
  REQUIRE(env.run(job, "pause-ref", "-q").status == 0);
  Child child(env.argv({"run", job, "--id", "pause", "--workspace", env.workspace()}));
  for (int seen = 0; seen < 3;) {
    auto line = child.line();
    REQUIRE(line);
    seen += line->find("step ") != std::string::npos;
  }
  child.signal(SIGINT);
  CHECK(child.finish() == 130);
  CHECK(child.stderr_text().find("mnemo resume pause") != std::string::npos);
  CHECK(env.show("pause").at("status") == "interrupted");
  auto resumed = env.cli("resume pause");
  CHECK(resumed.status == 0);
  CHECK(resumed.err.find("resumed from KV snapshot") != std::string::npos);
  mnemo::test::check_resumed_from_snapshots(env, "pause", 1);
  CHECK(normalized_messages(env.show("pause")) == normalized_messages(env.show("pause-ref")));
}
