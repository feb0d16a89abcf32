// Kill-and-resume (docs/DESIGN.md "Determinism"): `mnemo run` SIGKILLed at random points and resumed
// each time ends exactly where the uninterrupted run ends, and a non-idempotent tool never runs
// twice.
#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <numeric>
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

// The step a progress line is about ("[   1.25s] step 7  list_dir {...}"), or -1.
int step_of(const std::string& line) {
  const size_t at = line.find("] step ");
  if (at == std::string::npos || line.front() != '[') return -1;
  return std::atoi(line.c_str() + at + 7);
}

// Starts the job, then SIGKILLs it `kills` times at points spread over its run: kill i comes once
// a progress line shows step targets[i] or later (distinct steps drawn from 1..max_target, a few
// steps before the job's end), then after a random part of one step's time (measured from the
// progress lines as the job runs), so it lands inside a model turn, a tool call or a commit. The
// job is resumed after each kill, and finally resumed to its end. Returns the number of kills that
// landed while the job was running: all of them, however fast the machine, as each waits for a
// step that comes before the end.
int run_with_kills(const AgentEnv& env, const std::vector<std::string>& run_args,
                   const std::string& id, int kills, int max_target, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int> targets(static_cast<size_t>(max_target));
  std::iota(targets.begin(), targets.end(), 1);
  std::shuffle(targets.begin(), targets.end(), rng);
  targets.resize(static_cast<size_t>(kills));
  std::sort(targets.begin(), targets.end());
  using Clock = std::chrono::steady_clock;
  double step_ms = 0;  // measured between two step lines; estimated from the first one until then
  bool measured = false;
  int landed = 0;
  bool first = true;
  for (int target : targets) {
    std::vector<std::string> args = first ? run_args : std::vector<std::string>{"resume", id};
    first = false;
    const auto started = Clock::now();
    Child child(env.argv(args));
    int last_step = -1;
    Clock::time_point last_at{};
    bool ended = false;
    for (;;) {
      auto line = child.line();
      if (!line) {
        ended = true;
        break;
      }
      const int step = step_of(*line);
      if (step < 0 || step == last_step) continue;
      const auto now = Clock::now();
      if (last_step >= 0 && step > last_step) {
        step_ms = std::chrono::duration<double, std::milli>(now - last_at).count() / (step - last_step);
        measured = true;
      } else if (!measured) {
        // Start-up (loading the model) and one turn: half of it is at most about one step.
        step_ms = std::chrono::duration<double, std::milli>(now - started).count() / 2;
      }
      last_step = step;
      last_at = now;
      if (step >= target) break;
    }
    if (ended) {
      INFO(child.stderr_text());
      REQUIRE(child.wait() == 0);
      return landed;  // the job ended before this kill: the caller's check says so
    }
    const double delay_ms = std::uniform_real_distribution<double>(0, 1)(rng) * step_ms;
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(delay_ms * 1000)));
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
      env, {"run", job, "--id", "killed", "--workspace", env.workspace()}, "killed", 20, 27,
      20261129);
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
      env, {"run", job, "--id", "appender", "--workspace", env.workspace()}, "appender", 10, 11, 7);
  CHECK(landed == 10);
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
