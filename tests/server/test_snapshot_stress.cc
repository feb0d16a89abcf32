// Snapshots written while other jobs run: many long single-turn jobs through the job API at
// serving precision, the store verified after each, and every one resumable from its snapshot.
#include <catch2/catch.hpp>

#include "server/agent_server_util.h"

using namespace mnemo;
using namespace mnemo::test;
namespace json = boost::json;

namespace {

// One long turn and no tools: the tiny model's random weights run it to max_turn_tokens (or an
// end-of-turn token), and the run's end commits the step's snapshot.
std::string long_turn_job(int seed) {
  return R"({"name": "long-turn", "input": "Write a long story.", "tool_choice": "none",
    "model": {"embedded": {"precision": "serving"}},
    "limits": {"max_turn_tokens": 700}, "sampling": {"temperature": 1.0, "seed": )" +
         std::to_string(seed) + "}}";
}

bool ended(const json::value& job) {
  const auto& s = job.at("status").as_string();
  return s != "running" && s != "interrupted" && s != "queued";
}

}  // namespace

TEST_CASE("concurrent long turns leave verified snapshots that resume without prefill",
          "[server][jobs][snapshot][stress]") {
  AgentServer server;
  constexpr int kJobs = 6;
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    const std::string id = "long-" + std::to_string(i);
    HttpResult r = post_json(server.port(), "/v1/jobs?id=" + id, long_turn_job(100 + i));
    INFO(r.body);
    REQUIRE(r.status == 201);
    ids.push_back(id);
  }
  std::set<std::string> done;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (done.size() < ids.size()) {
    REQUIRE(std::chrono::steady_clock::now() < until);
    for (const std::string& id : ids) {
      if (done.count(id)) continue;
      HttpResult r = http_request(server.port(), http::verb::get, "/v1/jobs/" + id);
      REQUIRE(r.status == 200);
      if (!ended(r.json())) continue;
      done.insert(id);
      // Verified while the other jobs still write.
      auto report = server.store().verify();
      REQUIRE(report);
      INFO(id);
      for (const std::string& p : report->problems) UNSCOPED_INFO(p);
      CHECK(report->ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Each job goes on from its snapshot: the resume records it, and nothing is prefilled but the
  // new message.
  for (const std::string& id : ids) {
    INFO(id);
    auto before = server.store().session(id);
    REQUIRE(before);
    REQUIRE(before->last_snapshot > 0);
    WsClient ws(server.port());
    ws.send(json::object{{"type", "session.resume"}, {"session_id", id},
                         {"after_seq", before->last_seq}});
    ws.send(json::object{{"type", "input.message"}, {"session_id", id},
                         {"content", "Go on."}});
    auto msgs = ws.until("session.resumed");
    REQUIRE(!msgs.empty());
    const json::value& resumed = msgs.back();
    REQUIRE(type_of(resumed) == "session.resumed");
    INFO(json::serialize(resumed));
    CHECK(resumed.at("payload").at("from") == "snapshot");
    // Restored at the position its last step committed (the turn ran to its token limit or to
    // an end-of-turn token).
    int64_t committed = -1;
    auto events = server.store().read_events(id);
    REQUIRE(events);
    for (const auto& e : *events) {
      if (e.type == "step.committed")
        committed = json::parse(e.payload).at("position").to_number<int64_t>();
    }
    CHECK(committed > 100);
    CHECK(resumed.at("payload").at("position").to_number<int64_t>() == committed);
    // The session continues to its end; the store stays consistent.
    ws.until_finished(server.store(), id);
  }
  auto report = server.store().verify();
  REQUIRE(report);
  CHECK(report->ok());
}
