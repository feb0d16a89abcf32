// The job API over real sockets: create, list, get, the SSE event stream (resumed with
// Last-Event-ID), cancel, approve, deny, and tenant isolation.
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>

#include "server/agent_server_util.h"
#include "support/loopback_http.h"
#include "support/remote_data.h"

using namespace mnemo;
using namespace mnemo::test;
namespace json = boost::json;

namespace {

struct SseEvent {
  uint64_t id = 0;
  std::string event;
  std::string data;
};

std::vector<SseEvent> parse_sse(const std::string& body) {
  std::vector<SseEvent> out;
  SseEvent cur;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(at, end - at);
    at = end + 1;
    if (line.empty()) {
      if (!cur.event.empty()) out.push_back(cur);
      cur = {};
    } else if (line.rfind("id: ", 0) == 0) {
      cur.id = std::stoull(line.substr(4));
    } else if (line.rfind("event: ", 0) == 0) {
      cur.event = line.substr(7);
    } else if (line.rfind("data: ", 0) == 0) {
      cur.data = line.substr(6);
    }
  }
  return out;
}

bool finished(const json::value& job) {
  const auto& s = job.at("status").as_string();
  return s != "running" && s != "interrupted";
}

}  // namespace

TEST_CASE("job API: create, list, get, SSE events with Last-Event-ID resume", "[server][jobs]") {
  AgentServer server;
  HttpResult created = post_json(server.port(), "/v1/jobs?id=job-one", echo_job_json(2));
  INFO(created.body);
  REQUIRE(created.status == 201);
  CHECK(created.json().at("id") == "job-one");
  CHECK(created.json().at("name") == "echo-job");

  // The whole stream, ending after run.finished.
  HttpResult all = http_request(server.port(), http::verb::get, "/v1/jobs/job-one/events");
  REQUIRE(all.status == 200);
  CHECK(all.headers["Content-Type"] == "text/event-stream");
  std::vector<SseEvent> events = parse_sse(all.body);
  INFO(all.body);
  REQUIRE(events.size() >= 6);
  CHECK(events.front().event == "session.created");
  CHECK(events.front().id == 1);
  // Everything up to the last stored event (a step's step.committed may follow run.finished).
  CHECK(events.back().id == server.store().session("job-one")->last_seq);
  for (size_t i = 0; i < events.size(); ++i) CHECK(events[i].id == i + 1);  // in order, no gaps
  auto fin = std::find_if(events.begin(), events.end(),
                          [](const SseEvent& e) { return e.event == "run.finished"; });
  REQUIRE(fin != events.end());
  CHECK(json::parse(fin->data).at("reason") == "limit");
  // Internals stay out of the payloads.
  for (const SseEvent& e : events) CHECK(e.data.find("\"tokens\"") == std::string::npos);
  // Each call ran isolated and wrote the job's (server-made, root-owned when we are root)
  // workspace, and said so with its exit status.
  size_t results = 0;
  for (const SseEvent& e : events) {
    if (e.event != "tool.result") continue;
    ++results;
    CHECK(json::parse(e.data).at("exit_status") == 0);
  }
  {
    std::ifstream log(server.workspace("local", "job-one") / "calls.log");
    size_t lines = 0;
    for (std::string l; std::getline(log, l);) ++lines;
    CHECK(lines == results);
    CHECK(results >= 2);
  }

  // Resumed after seq 3: exactly the rest.
  HttpResult rest = http_request(server.port(), http::verb::get, "/v1/jobs/job-one/events", {},
                                 {{"Last-Event-ID", "3"}});
  std::vector<SseEvent> tail = parse_sse(rest.body);
  REQUIRE(tail.size() == events.size() - 3);
  CHECK(tail.front().id == 4);
  CHECK(tail.back().id == events.back().id);
  // After the last event of a finished job: an empty stream that ends.
  HttpResult none = http_request(server.port(), http::verb::get, "/v1/jobs/job-one/events", {},
                                 {{"Last-Event-ID", std::to_string(events.back().id)}});
  CHECK(parse_sse(none.body).empty());
  CHECK(http_request(server.port(), http::verb::get, "/v1/jobs/job-one/events", {},
                     {{"Last-Event-ID", "x"}}).status == 400);

  json::value job = wait_job(server.port(), "job-one", finished);
  CHECK(job.at("status") == "limit");
  CHECK(job.at("steps").to_number<int>() == 2);
  CHECK(job.at("messages").as_array().size() >= 4);

  // YAML body, an id generated from the name.
  HttpResult yaml = post_json(server.port(), "/v1/jobs",
                              "name: yaml-job\ninput: Hi.\nlimits:\n  max_steps: 1\n  "
                              "max_turn_tokens: 8\n");
  INFO(yaml.body);
  REQUIRE(yaml.status == 201);
  const std::string yaml_id(yaml.json().at("id").as_string());
  CHECK(yaml_id.rfind("yaml-job-", 0) == 0);

  HttpResult list = http_request(server.port(), http::verb::get, "/v1/jobs");
  REQUIRE(list.status == 200);
  CHECK(list.json().at("data").as_array().size() == 2);
  CHECK(http_request(server.port(), http::verb::get, "/v1/jobs/nope").status == 404);
}

TEST_CASE("job API: bad jobs are 400 with the field named, a taken id 409", "[server][jobs]") {
  AgentServer server;
  HttpResult bad = post_json(server.port(), "/v1/jobs", R"({"name": "x", "input": "hi", "limts": {}})");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("limts") != std::string::npos);
  HttpResult input = post_json(server.port(), "/v1/jobs",
                               R"({"job": {"name": "x", "input": "Hi {{inputs.who}}", "inputs": {"who": null}}})");
  CHECK(input.status == 400);
  CHECK(input.body.find("who") != std::string::npos);
  HttpResult ok = post_json(server.port(), "/v1/jobs",
                            R"({"job": {"name": "x", "input": "Hi {{inputs.who}}", "inputs": {"who": null},
                                "limits": {"max_steps": 1, "max_turn_tokens": 4}},
                                "inputs": {"who": "you"}, "id": "with-inputs"})");
  INFO(ok.body);
  REQUIRE(ok.status == 201);
  HttpResult again = post_json(server.port(), "/v1/jobs?id=with-inputs", echo_job_json(1));
  CHECK(again.status == 409);
  CHECK(post_json(server.port(), "/v1/jobs?id=bad%20id", echo_job_json(1)).status == 400);
  json::value job = wait_job(server.port(), "with-inputs", finished);
  CHECK(job.at("messages").at(0).at("content") == "Hi you");
}

TEST_CASE("job API: cancel a running job, and resume a finished one returns it", "[server][jobs]") {
  AgentServer server;
  REQUIRE(post_json(server.port(), "/v1/jobs?id=long", echo_job_json(200)).status == 201);
  HttpResult cancel = post_json(server.port(), "/v1/jobs/long/cancel", "");
  INFO(cancel.body);
  CHECK(cancel.status == 200);
  json::value job = wait_job(server.port(), "long", finished);
  CHECK(job.at("status") == "cancelled");
  CHECK(job.at("finish_reason") == "cancelled");
  // Cancelling a finished job is a conflict; resuming it returns it as it is.
  CHECK(post_json(server.port(), "/v1/jobs/long/cancel", "").status == 409);
  CHECK(post_json(server.port(), "/v1/jobs/long/resume", "").status == 200);
}

TEST_CASE("job API: resume retries a job that failed on a transient error", "[server][jobs]") {
  // The operator's endpoint fails once (503), then answers with a recorded stream.
  std::atomic<bool> fail{true};
  LoopbackHttpServer upstream([&](HttpExchange& ex) {
    if (fail) {
      ex.respond(503, "application/json", R"({"error": {"message": "overloaded, try again"}})");
      return;
    }
    ex.begin_chunked();
    ex.send_chunked(remote_data("tool_required.sse"), 97);
    ex.end_chunks();
  });
  AgentServer server({.config = "endpoints:\n  flaky:\n    base_url: " + upstream.base_url() +
                                "\n    models: [tiny-long.gguf]\ntenants:\n  default:\n    "
                                "remote_endpoints: [flaky]\n"});
  const std::string body = R"({"name": "flaky", "input": "Greet.",
    "model": {"remote": {"endpoint": "flaky"}}, "limits": {"max_steps": 3}})";
  HttpResult created = post_json(server.port(), "/v1/jobs?id=flaky", body);
  INFO(created.body);
  REQUIRE(created.status == 201);
  json::value job = wait_job(server.port(), "flaky", finished);
  CHECK(job.at("status") == "failed");
  CHECK_THAT(std::string(job.at("error").as_string()), Catch::Contains("503"));

  fail = false;
  HttpResult resumed = post_json(server.port(), "/v1/jobs/flaky/resume", "");
  INFO(resumed.body);
  CHECK((resumed.status == 202 || resumed.status == 200));
  job = wait_job(server.port(), "flaky", [](const json::value& j) {
    return finished(j) && j.at("status") != "failed";
  });
  CHECK(job.at("status") == "limit");
  CHECK(job.at("steps").to_number<int>() == 1);
  // The client's own retries gave up on the 503s; the job's retry sent the same conversation.
  const auto sent = upstream.received();
  REQUIRE(sent.size() >= 2);
  CHECK(json::parse(sent.back().body).at("messages") == json::parse(sent.front().body).at("messages"));
  CHECK(json::parse(sent.back().body).at("messages").at(0).at("content") == "Greet.");
}

TEST_CASE("job API: approve and deny a call waiting for approval", "[server][jobs]") {
  AgentServer server;
  REQUIRE(post_json(server.port(), "/v1/jobs?id=careful", echo_job_json(2, true)).status == 201);
  auto waiting = [](const json::value& j) { return j.at("status") == "waiting_approval"; };
  json::value job = wait_job(server.port(), "careful", waiting);
  REQUIRE(job.at("pending_approvals").as_array().size() >= 1);
  std::string call(job.at("pending_approvals").at(0).at("call_id").as_string());

  CHECK(post_json(server.port(), "/v1/jobs/careful/approve", "{}").status == 400);
  CHECK(post_json(server.port(), "/v1/jobs/careful/approve", R"({"call_id": "call_nope"})").status ==
        404);
  HttpResult ok = post_json(server.port(), "/v1/jobs/careful/approve",
                            json::serialize(json::object{{"call_id", call}}));
  INFO(ok.body);
  CHECK((ok.status == 202 || ok.status == 200));
  // Every later call (step 1's others, step 2's) is denied.
  for (;;) {
    job = wait_job(server.port(), "careful", finished);
    if (!waiting(job)) break;
    for (const auto& p : job.at("pending_approvals").as_array()) {
      HttpResult denied = post_json(server.port(), "/v1/jobs/careful/deny",
                                    json::serialize(json::object{{"call_id", p.at("call_id")}}));
      CHECK((denied.status == 202 || denied.status == 200 || denied.status == 409));
    }
  }
  CHECK(job.at("status") == "limit");
  // Deciding a call again, once decided and run, is a conflict with the job's state (409), not an
  // unknown call.
  HttpResult again = post_json(server.port(), "/v1/jobs/careful/approve",
                               json::serialize(json::object{{"call_id", call}}));
  INFO(again.body);
  CHECK(again.status == 409);
  HttpResult sse = http_request(server.port(), http::verb::get, "/v1/jobs/careful/events");
  std::vector<SseEvent> events = parse_sse(sse.body);
  size_t approvals = 0, denials = 0;
  for (const SseEvent& e : events) {
    if (e.event == "tool.approval") {
      json::value d = json::parse(e.data);
      (d.at("decision") == "approve" ? approvals : denials) += 1;
    }
  }
  CHECK(approvals == 1);
  CHECK(denials >= 1);
}

TEST_CASE("job API: another tenant's job is 404 and not listed", "[server][jobs][auth]") {
  AgentServer server({.keys = true});
  auto a = server.auth(server.key_a), b = server.auth(server.key_b);
  CHECK(post_json(server.port(), "/v1/jobs", echo_job_json(1)).status == 401);
  REQUIRE(post_json(server.port(), "/v1/jobs?id=secret", echo_job_json(1), a).status == 201);
  wait_job(server.port(), "secret", finished, a);
  CHECK(http_request(server.port(), http::verb::get, "/v1/jobs/secret", {}, b).status == 404);
  CHECK(http_request(server.port(), http::verb::get, "/v1/jobs/secret/events", {}, b).status == 404);
  CHECK(post_json(server.port(), "/v1/jobs/secret/cancel", "", b).status == 404);
  CHECK(post_json(server.port(), "/v1/jobs/secret/resume", "", b).status == 404);
  CHECK(post_json(server.port(), "/v1/jobs/secret/approve", R"({"call_id": "x"})", b).status == 404);
  CHECK(http_request(server.port(), http::verb::get, "/v1/jobs", {}, b).json().at("data").as_array().empty());
  CHECK(http_request(server.port(), http::verb::get, "/v1/jobs", {}, a).json().at("data").as_array().size() == 1);
  CHECK(http_request(server.port(), http::verb::get, "/v1/jobs/secret", {}, a).status == 200);
}
