// Kill-and-resume (DESIGN.md "Determinism"): `mnemo run` SIGKILLed at random points and resumed
// each time ends exactly where the uninterrupted run ends, and a non-idempotent tool never runs
// twice.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "integration/agent_env.h"

using mnemo::test::AgentEnv;
using mnemo::test::Child;
using mnemo::test::count_role;
using mnemo::test::normalized_messages;
namespace json = boost::json;

namespace {

std::string source(const std::string& rel) { return std::string(MNEMO_SOURCE_DIR) + "/" + rel; }

// Starts the job, then kills the process `kills` times at random points (after 1-3 progress lines
// and a random 0-60 ms more), resuming after each kill; finally resumes to the end. Returns the
// number of kills that landed while the job was still running.
int run_with_kills(const AgentEnv& env, const std::vector<std::string>& run_args,
                   const std::string& id, int kills, uint32_t seed) {
  std::mt19937 rng(seed);
  int landed = 0;
  bool first = true;
  for (int attempt = 0; landed < kills && attempt < kills * 3; ++attempt) {
    std::vector<std::string> args = first ? run_args : std::vector<std::string>{"resume", id};
    first = false;
    Child child(env.argv(args));
    const int lines = std::uniform_int_distribution<int>(1, 3)(rng);
    const int delay_ms = std::uniform_int_distribution<int>(0, 60)(rng);
    int seen = 0;
    bool ended = false;
    while (seen < lines) {
      auto line = child.line();
      if (!line) {
        ended = true;
        break;
      }
      if (line->find("step ") != std::string::npos || line->find("->") != std::string::npos) ++seen;
    }
    if (ended) {
      INFO(child.stderr_text());
      REQUIRE(child.wait() == 0);
      return landed;  // the job finished before this kill
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    child.kill_now();
    if (child.wait() == -SIGKILL) ++landed;
  }
  Child last(env.argv({"resume", id}));
  INFO(last.stderr_text());
  REQUIRE(last.finish() == 0);
  return landed;
}

}  // namespace

TEST_CASE("resume-demo killed at 20 random points ends with the same messages as uninterrupted",
          "[agent][resume]") {
  AgentEnv env;
  // Something for list_dir and read_file to find.
  std::ofstream(env.workspace() + "/notes.txt") << "first\nsecond\n";
  std::filesystem::create_directories(env.workspace() + "/src");
  std::ofstream(env.workspace() + "/src/main.c") << "int main(void) { return 0; }\n";
  const std::string job = source("examples/jobs/resume-demo.yaml");

  auto straight = env.run(job, "straight", "-q");
  INFO(straight.err);
  REQUIRE(straight.status == 0);
  json::value expected = env.show("straight");

  const int landed = run_with_kills(
      env, {"run", job, "--id", "killed", "--workspace", env.workspace()}, "killed", 20, 20261129);
  CHECK(landed == 20);
  json::value got = env.show("killed");
  CHECK(got.at("status") == expected.at("status"));
  CHECK(got.at("steps") == expected.at("steps"));
  CHECK(count_role(got, "tool") >= 20);
  CHECK(normalized_messages(got) == normalized_messages(expected));
  CHECK(got.at("generated_tokens") == expected.at("generated_tokens"));
  // Restored, not re-prefilled (prefill is bit-exact too, so the messages alone cannot tell).
  mnemo::test::check_resumed_from_snapshots(env, "killed", 15);

  // The store is consistent after all that.
  auto verify = env.cli("store verify");
  INFO(verify.out << verify.err);
  CHECK(verify.status == 0);
}

TEST_CASE("a non-idempotent tool is never run again after a kill", "[agent][resume]") {
  AgentEnv env;
  const std::string job = env.job("append", R"(instructions: Record progress.
input: Append a line on every step.
tools:
  - name: append_line
    description: Append this call's id as a line to calls.log.
    command: sleep 0.02; echo "$MNEMO_CALL_ID" >> calls.log; sleep 0.02
    idempotent: false
tool_choice: required
limits:
  max_steps: 14
  max_turn_tokens: 96
sampling:
  temperature: 0.8
  seed: 5
)");
  const int landed = run_with_kills(
      env, {"run", job, "--id", "appender", "--workspace", env.workspace()}, "appender", 10, 7);
  CHECK(landed >= 8);
  json::value got = env.show("appender");
  CHECK(got.at("status") == "limit");

  std::multiset<std::string> lines;
  {
    std::ifstream log(env.workspace() + "/calls.log");
    for (std::string l; std::getline(log, l);) lines.insert(l);
  }
  // Every committed result: exactly one line for a call that ran to its result, at most one for a
  // call whose outcome is unknown (it was interrupted), and nothing for any other id.
  auto events = env.cli("jobs logs appender --json");
  REQUIRE(events.status == 0);
  std::set<std::string> ran, unknown;
  std::istringstream in(events.out);
  for (std::string l; std::getline(in, l);) {
    json::value e = json::parse(l);
    if (e.at("type") != "tool.result") continue;
    const json::object& p = e.at("payload").as_object();
    std::string id(p.at("call_id").as_string());
    if (p.contains("outcome_unknown")) {
      unknown.insert(id);
      CHECK(std::string(p.at("content").as_string()).find("outcome unknown") != std::string::npos);
    } else {
      ran.insert(id);
    }
  }
  CHECK(ran.size() + unknown.size() == count_role(got, "tool"));
  CHECK(ran.size() + unknown.size() >= 14);
  for (const std::string& id : ran) CHECK(lines.count(id) == 1);
  for (const std::string& id : unknown) CHECK(lines.count(id) <= 1);
  for (const std::string& l : lines) CHECK((ran.count(l) + unknown.count(l)) == 1);
  mnemo::test::check_resumed_from_snapshots(env, "appender", 6);
}
