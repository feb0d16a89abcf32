// Attacks on a running server, as tenants holding keys and as web pages: each must fail at its
// root (docs/server.md, "Threat model"). Over real sockets, with the operator's config.
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "server/agent_server_util.h"

using namespace mnemo;
using namespace mnemo::test;
namespace json = boost::json;

namespace {

// acme may turn the sandbox off and use the endpoint "local"; globex gets the defaults.
constexpr const char* kConfig = R"(
tenants:
  default:
    max_concurrent_jobs: 2
    limits: {max_tokens: 4096, max_turn_tokens: 512, timeout: 10m, prompt_tokens: 2000}
    sandbox: {memory: 256M, timeout: 30s, disk: 1M}
    http_get_hosts: ["*.example.com", "10.1.2.3"]
  acme:
    sandbox: {allow_none: true}
    remote_endpoints: [local]
endpoints:
  local:
    base_url: http://127.0.0.1:9/v1
    models: [tiny]
origins: [https://console.example.com]
)";

HttpResult post_job(const AgentServer& s, const std::string& key, const std::string& body,
                    const std::string& query = "",
                    std::map<std::string, std::string> extra = {}) {
  auto headers = s.auth(key);
  for (auto& [k, v] : extra) headers[k] = v;
  return post_json(s.port(), "/v1/jobs" + query, body, headers);
}

std::string job(const std::string& extra) {
  return R"({"name": "probe", "input": "Go.", "tools": [{"name": "run", "command": "echo hi"}],
    "tool_choice": "required", "limits": {"max_steps": 1, "max_turn_tokens": 128})" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

std::string error_message(const HttpResult& r) {
  return std::string(r.json().at("error").at("message").as_string());
}

}  // namespace

TEST_CASE("a tenant's job cannot turn the sandbox off unless the operator grants it",
          "[server][security]") {
  AgentServer server({.keys = true, .config = kConfig});
  const std::string none = R"("sandbox": {"mode": "none"})";
  HttpResult refused = post_job(server, server.key_b, job(none));
  INFO(refused.body);
  CHECK(refused.status == 403);
  CHECK_THAT(error_message(refused), Catch::Contains("sandbox.mode"));
  CHECK_FALSE(server.store().session("globex:probe"));
  // The same over a WebSocket.
  WsClient ws(server.port(), server.key_b);
  ws.send(json::object{{"type", "session.create"},
                       {"session_id", "ws-none"},
                       {"job", json::parse(job(none))}});
  auto m = ws.recv();
  REQUIRE(m);
  CHECK(m->at("code") == "policy");
  CHECK_THAT(std::string(m->at("message").as_string()), Catch::Contains("sandbox.mode"));
  // Granted to acme.
  CHECK(post_job(server, server.key_a, job(none), "?id=granted").status == 201);
}

TEST_CASE("explicit requests over a tenant's ceilings are refused naming the field",
          "[server][security]") {
  AgentServer server({.keys = true, .config = kConfig});
  const std::pair<std::string, std::string> over[] = {
      {R"("sandbox": {"memory": "1T"}, "limits": {"max_steps": 1})", "sandbox.memory"},
      {R"("sandbox": {"timeout": "8760h"}, "limits": {"max_steps": 1})", "sandbox.timeout"},
      {R"("sandbox": {"disk": "10G"}, "limits": {"max_steps": 1})", "sandbox.disk"},
      {R"("limits": {"max_steps": 1, "max_tokens": 100000})", "limits.max_tokens"},
      {R"("limits": {"max_steps": 1, "timeout": "8760h"})", "limits.timeout"},
  };
  for (const auto& [fields, name] : over) {
    const std::string body = R"({"name": "probe", "input": "Go.", "tools": ["shell"], )" + fields + "}";
    HttpResult r = post_job(server, server.key_b, body);
    INFO(body << "\n" << r.body);
    CHECK(r.status == 403);
    CHECK_THAT(error_message(r), Catch::Contains(name));
  }
  // 1e12 tokens is not even a valid count.
  HttpResult huge = post_job(server, server.key_b, job("").replace(job("").find("128"), 3, "1000000000000"));
  CHECK(huge.status == 400);
  // A prompt over the ceiling (2000 tokens here) is refused before the job exists.
  std::string words;
  for (int i = 0; i < 3000; ++i) words += "lorem" + std::to_string(i) + " ";
  HttpResult big = post_job(server, server.key_b,
                            R"({"name": "big", "input": ")" + words + R"(", "limits": {"max_steps": 1}})",
                            "?id=big");
  INFO(big.body);
  CHECK(big.status == 403);
  CHECK_THAT(error_message(big), Catch::Contains("prompt"));
  CHECK_FALSE(server.store().session("globex:big"));
  // Defaults above a ceiling are lowered, not refused: a plain job runs.
  CHECK(post_job(server, server.key_b, job(""), "?id=plain").status == 201);
}

TEST_CASE("a workspace over its disk quota stops the job", "[server][security]") {
  AgentServer server({.keys = true, .config = kConfig});
  // 1M quota: forty files of 200K each, written in one call.
  const std::string fill = R"({"name": "fill", "input": "Fill.", "tool_choice": "required",
    "tools": [{"name": "fill", "command": "for i in $(seq 1 40); do head -c 200000 /dev/zero > f$i; done; echo done"}],
    "limits": {"max_steps": 3, "max_turn_tokens": 128}})";
  HttpResult r = post_job(server, server.key_b, fill, "?id=fill");
  INFO(r.body);
  REQUIRE(r.status == 201);
  json::value done = wait_job(server.port(), "fill", [](const json::value& j) {
    return j.at("status") != "running" && j.at("status") != "queued";
  }, server.auth(server.key_b));
  CHECK(done.at("status") == "limit");
  CHECK(done.at("limit") == "disk");
  CHECK(done.at("steps").to_number<int>() == 1);
  // No single file may outgrow the quota either (the sandbox's file-size limit).
  const std::string one = R"({"name": "one", "input": "Big.", "tool_choice": "required",
    "tools": [{"name": "big", "command": "head -c 3000000 /dev/zero > big; echo status $?"}],
    "limits": {"max_steps": 1, "max_turn_tokens": 128}})";
  REQUIRE(post_job(server, server.key_b, one, "?id=one").status == 201);
  wait_job(server.port(), "one", [](const json::value& j) {
    return j.at("status") != "running" && j.at("status") != "queued";
  }, server.auth(server.key_b));
  std::error_code ec;
  const auto size = std::filesystem::file_size(server.workspace("globex", "one") / "big", ec);
  CHECK((ec || size <= 1024 * 1024));
}

TEST_CASE("a tenant's jobs beyond its concurrency wait in a queue, then all run",
          "[server][security]") {
  AgentServer server({.keys = true, .config = kConfig});
  const std::string slow = R"({"name": "slow", "input": "Wait.", "tool_choice": "required",
    "tools": [{"name": "nap", "command": "sleep 1; echo up", "idempotent": true}],
    "limits": {"max_steps": 2, "max_turn_tokens": 128}, "sampling": {"seed": 5}})";
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back("slow-" + std::to_string(i));
    HttpResult r = post_job(server, server.key_b, slow, "?id=" + ids.back());
    REQUIRE(r.status == 201);
    if (i >= 2) CHECK(r.json().at("status") == "queued");
  }
  // Never more than two running at once, and every one ends. How many run is read from the hub in
  // one look (five GETs in a row are no snapshot: a job can end and the next start between them).
  int64_t max_running = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (;;) {
    max_running = std::max(max_running, server.hub().running_count());
    int ended = 0;
    for (const std::string& id : ids) {
      HttpResult r = http_request(server.port(), http::verb::get, "/v1/jobs/" + id, {},
                                  server.auth(server.key_b));
      REQUIRE(r.status == 200);
      const auto& s = r.json().at("status").as_string();
      ended += s != "running" && s != "queued" && s != "interrupted";
    }
    if (ended == static_cast<int>(ids.size())) break;
    REQUIRE(std::chrono::steady_clock::now() < until);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(max_running <= 2);
  CHECK(max_running >= 1);
  // Another tenant is not held up by globex's queue.
  CHECK(post_job(server, server.key_a, job(""), "?id=acme-free").json().at("status") != "queued");
}

TEST_CASE("remote models in tenant jobs come only from the operator's endpoints",
          "[server][security]") {
  ::setenv("SERVER_SECRET_TOKEN", "do-not-leak", 1);
  AgentServer server({.keys = true, .config = kConfig});
  const std::string url_job = job(R"("model": {"remote": {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key_env": "SERVER_SECRET_TOKEN"}})");
  HttpResult r = post_job(server, server.key_a, url_job);
  INFO(r.body);
  CHECK(r.status == 403);
  CHECK_THAT(error_message(r), Catch::Contains("endpoint"));
  CHECK(r.body.find("do-not-leak") == std::string::npos);
  // An endpoint the tenant is not granted, and one that does not exist.
  CHECK(post_job(server, server.key_b, job(R"("model": {"remote": {"endpoint": "local"}})")).status == 403);
  CHECK(post_job(server, server.key_a, job(R"("model": {"remote": {"endpoint": "nope"}})")).status == 403);
  // A model the endpoint does not serve.
  CHECK(post_job(server, server.key_a, job(R"("model": {"remote": {"endpoint": "local", "model": "other"}})")).status == 403);
  // Granted: the job is created and runs against the configured URL.
  HttpResult ok = post_job(server, server.key_a, job(R"("model": {"remote": {"endpoint": "local"}})"), "?id=remote");
  INFO(ok.body);
  CHECK(ok.status == 201);
  ::unsetenv("SERVER_SECRET_TOKEN");
}

TEST_CASE("a tenant cannot choose the server's model directory, and paths are not probed",
          "[server][security]") {
  AgentServer server({.keys = true, .config = kConfig});
  HttpResult exists = post_job(server, server.key_b, job(R"("model": {"embedded": {"dir": "/etc"}})"));
  HttpResult missing = post_job(server, server.key_b, job(R"("model": {"embedded": {"dir": "/nonexistent/x"}})"));
  CHECK(exists.status == 403);
  CHECK(missing.status == 403);
  // Nothing tells the two apart but the path the tenant sent.
  std::string a = error_message(exists), b = error_message(missing);
  CHECK(a.find("model.embedded.dir") != std::string::npos);
  CHECK(a.substr(a.find("model.embedded.dir")) == b.substr(b.find("model.embedded.dir")));
}

TEST_CASE("http_get hosts of a tenant's job are the job's list intersected with the operator's",
          "[server][security]") {
  AgentServer server({.keys = true, .config = kConfig});
  auto with_hosts = [](const std::string& hosts) {
    return R"({"name": "web", "input": "Fetch.", "tools": [{"name": "http_get", "hosts": )" + hosts +
           R"(}], "limits": {"max_steps": 1, "max_turn_tokens": 128}})";
  };
  CHECK(post_job(server, server.key_b, with_hosts(R"(["docs.example.com"])")).status == 201);
  HttpResult wide = post_job(server, server.key_b, with_hosts(R"(["*"])"));
  CHECK(wide.status == 403);
  CHECK_THAT(error_message(wide), Catch::Contains("tools[0].hosts[0]"));
  CHECK(post_job(server, server.key_b, with_hosts(R"(["127.0.0.1"])")).status == 403);
  CHECK(post_job(server, server.key_b, with_hosts(R"(["169.254.169.254"])")).status == 403);
}

TEST_CASE("ids are each tenant's own, and . and .. are not ids", "[server][security]") {
  AgentServer server({.keys = true, .config = kConfig});
  for (const char* bad : {".", ".."}) {
    HttpResult r = post_job(server, server.key_a, job(""), std::string("?id=") + bad);
    CHECK(r.status == 400);
  }
  // Both tenants have a job "same"; neither sees the other's.
  REQUIRE(post_job(server, server.key_a, job(""), "?id=same").status == 201);
  HttpResult b = post_job(server, server.key_b, job(""), "?id=same");
  INFO(b.body);
  CHECK(b.status == 201);
  CHECK(b.json().at("id") == "same");
  CHECK(post_job(server, server.key_b, job(""), "?id=same").status == 409);  // its own, taken
  for (const std::string& key : {server.key_a, server.key_b}) {
    HttpResult list = http_request(server.port(), http::verb::get, "/v1/jobs", {}, server.auth(key));
    REQUIRE(list.status == 200);
    CHECK(list.json().at("data").as_array().size() == 1);
  }
  // Workspaces stay apart.
  CHECK(server.workspace("acme", "same") != server.workspace("globex", "same"));
  CHECK(std::filesystem::is_directory(server.workspace("acme", "same")));
  CHECK(std::filesystem::is_directory(server.workspace("globex", "same")));
}

TEST_CASE("a workspace that resolves outside its tenant's folder is refused", "[server][security]") {
  AgentServer server({.keys = true, .config = kConfig});
  // Something planted a symlink where a job's workspace would go.
  const auto tenant_dir = server.workspace("globex", "x").parent_path();
  std::filesystem::create_directories(tenant_dir);
  const auto target = std::filesystem::temp_directory_path() /
                      ("mnemo-planted-" + std::to_string(::getpid()));
  std::filesystem::create_directories(target);
  std::filesystem::create_directory_symlink(target, tenant_dir / "planted");
  HttpResult r = post_job(server, server.key_b, job(""), "?id=planted");
  INFO(r.body);
  CHECK(r.status == 403);
  std::filesystem::remove_all(target);
}

TEST_CASE("web pages cannot drive the server: Origin, Content-Type and Host are checked",
          "[server][security]") {
  AgentServer server({.config = kConfig});  // keyless, loopback
  const std::string own = "http://127.0.0.1";
  // A cross-site page (text/plain needs no preflight) and a foreign Origin.
  HttpResult plain = post_job(server, "", job(""), "?id=a", {{"Content-Type", "text/plain"}});
  CHECK(plain.status == 415);
  HttpResult evil = post_job(server, "", job(""), "?id=b", {{"Origin", "http://evil.example"}});
  CHECK(evil.status == 403);
  CHECK(evil.json().at("error").at("code") == "origin_not_allowed");
  CHECK_FALSE(server.store().session("a"));
  CHECK_FALSE(server.store().session("b"));
  // Bodiless state changes are checked too.
  HttpResult cancel = http_request(server.port(), http::verb::post, "/v1/jobs/a/cancel", {},
                                   {{"Origin", "http://evil.example"}});
  CHECK(cancel.status == 403);
  // The server's own origin, a listed one, and clients that send none (curl, SDKs).
  CHECK(post_job(server, "", job(""), "?id=c", {{"Origin", own}}).status == 201);
  CHECK(post_job(server, "", job(""), "?id=d", {{"Origin", "https://console.example.com"}}).status == 201);
  CHECK(post_job(server, "", job(""), "?id=e").status == 201);
  CHECK(post_job(server, "", job(""), "?id=f", {{"Content-Type", "application/yaml"}}).status == 201);
  // A rebound DNS name reaching a keyless server.
  HttpResult rebound = http_request(server.port(), http::verb::get, "/v1/jobs", {},
                                    {{"Host", "attacker.example:8080"}});
  CHECK(rebound.status == 421);
  // WebSocket upgrades from a foreign page are refused; the server's own are fine.
  CHECK_THROWS(WsClient(server.port(), "", "http://evil.example"));
  WsClient ok(server.port(), "", own);
  ok.send(json::object{{"type", "ping"}});
  CHECK(type_of(*ok.recv()) == "pong");
}

TEST_CASE("YAML alias bombs and oversized jobs are refused before anything is built",
          "[server][security]") {
  AgentServer server({.keys = true, .config = kConfig});
  std::string bomb = "name: bomb\ninput: hi\ntools:\n  - name: t\n    command: echo\n"
                     "    parameters:\n      type: object\n      properties:\n"
                     "        a0: &a0 {type: string, enum: [x, x, x, x, x, x, x, x, x]}\n";
  for (int i = 1; i < 9; ++i) {
    const std::string p = "*a" + std::to_string(i - 1);
    bomb += "        a" + std::to_string(i) + ": &a" + std::to_string(i) +
            " {type: object, properties: {p1: " + p + ", p2: " + p + ", p3: " + p + ", p4: " + p +
            ", p5: " + p + ", p6: " + p + "}}\n";
  }
  const auto t0 = std::chrono::steady_clock::now();
  HttpResult r = post_job(server, server.key_b, bomb, "", {{"Content-Type", "application/yaml"}});
  INFO(r.body);
  CHECK(r.status == 400);
  CHECK_THAT(error_message(r), Catch::Contains("YAML nodes"));
  // Generous: the point is that nothing expands (it took minutes and gigabytes before).
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  std::string deep = "name: deep\ninput: hi\nsampling: " + std::string(600, '[') + std::string(600, ']');
  CHECK(post_job(server, server.key_b, deep, "", {{"Content-Type", "application/yaml"}}).status == 400);
}
