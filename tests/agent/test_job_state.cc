// A job's state rebuilt from its event log: the same replay a resumed job and `mnemo jobs show`
// use.
#include <mnemo/agent/job_state.h>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <regex>

using mnemo::agent::JobStatus;
using mnemo::memory::Event;

namespace {

const char* kSpec =
    "name: t\\ninput: hi\\ntools:\\n  - name: rec\\n    command: echo x\\n    approval: always\\n";

std::vector<Event> base_log() {
  return {
      {1, "session.created",
       std::string(R"({"kind":"job","name":"t","spec_yaml":")") + kSpec +
           R"(","spec_file":"t.yaml","inputs":{},"seed":7,"workspace":"/w","model_dir":"/m","fingerprint":"f"})",
       100},
      {2, "input.message",
       R"({"role":"user","content":"hi","instructions":"be brief","tokens":[1,2,3]})", 101},
      {3, "message",
       R"({"step":1,"content":"","tool_calls":[{"id":"call_a_1_0","name":"rec","arguments":"{}"}],"finish":"tool_calls","tokens":[4,5],"sampler_state":"00ff","completion_tokens":2})",
       102},
  };
}

}  // namespace

TEST_CASE("replay rebuilds the conversation, the transcript and what waits", "[agent]") {
  auto log = base_log();
  auto s = mnemo::agent::replay_job("job", log);
  REQUIRE(s);
  CHECK(s->spec.name == "t");
  CHECK(s->origin.seed == 7);
  CHECK(s->transcript == std::vector<mnemo::inference::TokenId>{1, 2, 3, 4, 5});
  CHECK(s->steps == 1);
  CHECK(s->generated_tokens == 2);
  CHECK(s->sampler_state == std::string("\x00\xff", 2));
  CHECK(s->status() == JobStatus::kInterrupted);
  CHECK_FALSE(s->calls_settled());

  log.push_back({4, "tool.approval_required",
                 R"({"call_id":"call_a_1_0","name":"rec","arguments":"{}"})", 103});
  s = mnemo::agent::replay_job("job", log);
  REQUIRE(s);
  CHECK(s->status() == JobStatus::kWaitingApproval);
  auto shown = boost::json::parse(mnemo::agent::job_json(*s, true));
  CHECK(shown.at("pending_approvals").at(0).at("call_id") == "call_a_1_0");

  log.push_back(
      {5, "tool.approval", R"({"call_id":"call_a_1_0","decision":"approve","by":"cli"})", 104});
  log.push_back({6, "tool.intent",
                 R"({"call_id":"call_a_1_0","name":"rec","arguments":"{}","step":1})", 105});
  log.push_back(
      {7, "tool.result",
       R"({"call_id":"call_a_1_0","name":"rec","ok":true,"content":"x\n","tokens":[6,7]})", 106});
  log.push_back({8, "run.finished", R"({"reason":"completed","answer":""})", 107});
  s = mnemo::agent::replay_job("job", log);
  REQUIRE(s);
  CHECK(s->calls_settled());
  CHECK(s->status() == JobStatus::kCompleted);
  CHECK(s->transcript.size() == 7);
  auto messages = boost::json::parse(mnemo::agent::messages_json(*s));
  REQUIRE(messages.as_array().size() == 4);
  CHECK(messages.at(0).at("role") == "system");
  CHECK(messages.at(0).at("content") == "be brief");
  CHECK(messages.at(2).at("tool_calls").at(0).at("function").at("name") == "rec");
  CHECK(messages.at(3).at("tool_call_id") == "call_a_1_0");

  // A new input opens a new run: the per-run counters start again.
  log.push_back({9, "input.message", R"({"role":"user","content":"more","tokens":[8]})", 108});
  s = mnemo::agent::replay_job("job", log);
  REQUIRE(s);
  CHECK_FALSE(s->finished);
  CHECK(s->run_steps == 0);
  CHECK(s->steps == 1);
}

TEST_CASE("a damaged log is an error naming the event and the field", "[agent]") {
  auto log = base_log();
  log[2].payload = R"({"step":1,"tool_calls":[{"id":"x"}]})";
  auto s = mnemo::agent::replay_job("job", log);
  REQUIRE_FALSE(s);
  CHECK(s.status().message() ==
        "event 3 (message): tool_calls entries need string id, name and arguments");

  log = base_log();
  log[1].payload = "{not json";
  s = mnemo::agent::replay_job("job", log);
  REQUIRE_FALSE(s);
  CHECK(s.status().message().find("event 2 (input.message): payload is not a JSON object") !=
        std::string::npos);

  log = base_log();
  log.push_back({4, "tool.result", R"({"call_id":"call_zzz","content":"x"})", 103});
  s = mnemo::agent::replay_job("job", log);
  REQUIRE_FALSE(s);
  CHECK(s.status().message().find("names no call of the last assistant turn (call_zzz)") !=
        std::string::npos);

  std::vector<Event> not_a_job = {{1, "session.created", R"({"kind":"ws"})", 1}};
  s = mnemo::agent::replay_job("sess", not_a_job);
  REQUIRE_FALSE(s);
  CHECK(s.status().message().find("is not a job") != std::string::npos);
}

TEST_CASE("tool-call ids are a function of session, step and index", "[agent]") {
  const std::string a = mnemo::agent::tool_call_id("job-1", 3, 0);
  CHECK(a == mnemo::agent::tool_call_id("job-1", 3, 0));
  CHECK(std::regex_match(a, std::regex("call_[0-9a-f]{8}_3_0")));
  CHECK(a != mnemo::agent::tool_call_id("job-2", 3, 0));
  CHECK(a != mnemo::agent::tool_call_id("job-1", 3, 1));
}
