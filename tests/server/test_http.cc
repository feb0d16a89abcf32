// The HTTP layer: API keys, the loopback rule, body caps, slow clients, keep-alive, routing errors,
// health and metrics, `mnemo serve` as a process.
#include <mnemo/memory/keys.h>
#include <mnemo/memory/store.h>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "server/server_test_util.h"
#include "support/run_cli.h"

using namespace mnemo;
using namespace mnemo::test;
namespace json = boost::json;

namespace {

struct TempStore {
  fs::path dir = fs::temp_directory_path() / ("mnemo-server-store-" + std::to_string(::getpid()));
  std::unique_ptr<memory::Store> store;
  TempStore() {
    fs::remove_all(dir);
    auto s = memory::Store::open(dir.string());
    REQUIRE(s);
    store = std::move(s).value();
  }
  ~TempStore() {
    store.reset();
    fs::remove_all(dir);
  }
};

void tenant_route(server::Router& r) {
  r.add(http::verb::get, "/whoami", [](server::Exchange& ex) -> boost::asio::awaitable<void> {
    auto write = ex.respond_json(http::status::ok, json::serialize(json::object{{"tenant", ex.tenant()}}));
    co_await std::move(write);
  });
}

}  // namespace

TEST_CASE("with keys in the store a missing or wrong key is 401 and a good one names its tenant",
          "[server][http][auth]") {
  TempStore ts;
  auto key = memory::add_api_key(*ts.store, "acme");
  REQUIRE(key);
  TestServer server({.auth = server::make_store_authenticator(*ts.store), .routes = tenant_route});
  HttpResult missing = http_request(server.port(), http::verb::get, "/v1/models");
  CHECK(missing.status == 401);
  CHECK(missing.json().at("error").at("type") == "authentication_error");
  HttpResult wrong = http_request(server.port(), http::verb::get, "/v1/models", {},
                                  {{"Authorization", "Bearer mnemo_sk_0000"}});
  CHECK(wrong.status == 401);
  HttpResult good = http_request(server.port(), http::verb::get, "/whoami", {},
                                 {{"Authorization", "Bearer " + key->key}});
  REQUIRE(good.status == 200);
  CHECK(good.json().at("tenant") == "acme");
  CHECK(http_request(server.port(), http::verb::get, "/v1/models", {},
                     {{"Authorization", "Bearer " + key->key}}).status == 200);
  // Health and metrics stay open.
  CHECK(http_request(server.port(), http::verb::get, "/healthz").body == "ok\n");
  REQUIRE(memory::revoke_api_key(*ts.store, key->info.id));
  CHECK(http_request(server.port(), http::verb::get, "/whoami", {},
                     {{"Authorization", "Bearer " + key->key}}).status == 401);
}

TEST_CASE("without keys the server serves on loopback only", "[server][http][auth]") {
  TestServer server({.routes = tenant_route});
  HttpResult r = http_request(server.port(), http::verb::get, "/whoami");
  REQUIRE(r.status == 200);
  CHECK(r.json().at("tenant") == "local");
  CHECK(server::check_listen_policy("127.0.0.1:0", false));
  CHECK(server::check_listen_policy("[::1]:8080", false));
  CHECK(server::check_listen_policy("0.0.0.0:8080", true));
  Status refused = server::check_listen_policy("0.0.0.0:8080", false);
  CHECK(!refused);
  CHECK(refused.message().find("without API keys") != std::string::npos);
  auto router = std::make_shared<server::Router>();
  server::ServerOptions o;
  o.listen = "0.0.0.0:0";
  CHECK(!server::Server::start(o, router, nullptr));
  CHECK(!server::parse_listen_address("localhost"));
  CHECK(!server::parse_listen_address("example.com:80"));
}

TEST_CASE("mnemo serve refuses a non-loopback address when its store has no keys",
          "[server][http][auth][cli]") {
  fs::path store = fs::temp_directory_path() / ("mnemo-serve-nokeys-" + std::to_string(::getpid()));
  fs::remove_all(store);
  CliResult r = run_cli("serve --listen 0.0.0.0:0 --store " + shell_quote(store.string()) +
                        " --model " + shell_quote(server_model_dir()));
  CHECK(r.status == 1);
  CHECK(r.err.find("without API keys") != std::string::npos);
  CHECK(r.err.find("mnemo keys add") != std::string::npos);
  fs::remove_all(store);
}

TEST_CASE("routing errors: 404 for an unknown path, 405 for a wrong method",
          "[server][http]") {
  TestServer server;
  HttpResult nf = http_request(server.port(), http::verb::get, "/v2/nothing");
  CHECK(nf.status == 404);
  CHECK(nf.json().at("error").at("message").as_string().size() > 0);
  HttpResult na = http_request(server.port(), http::verb::delete_, "/v1/chat/completions");
  CHECK(na.status == 405);
  CHECK(na.headers["Allow"] == "POST");
}

TEST_CASE("an oversized body is 413 with a JSON error", "[server][http][limits]") {
  TestServer server({.body_limit = 4096});
  std::string big = R"({"messages": [{"role": "user", "content": ")" + std::string(10000, 'a') + "\"}]}";
  HttpResult r = post_json(server.port(), "/v1/chat/completions", big);
  CHECK(r.status == 413);
  CHECK(r.json().at("error").at("message").as_string().find("4096") != json::string::npos);
  // The server goes on serving.
  CHECK(http_request(server.port(), http::verb::get, "/healthz").status == 200);
}

TEST_CASE("a slow client is closed after the read timeout while others are served",
          "[server][http][limits]") {
  TestServer server({.read_timeout = std::chrono::milliseconds(1000)});
  boost::asio::io_context io;
  tcp::socket slow(io);
  slow.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), server.port()));
  const auto start = std::chrono::steady_clock::now();
  boost::asio::write(slow, boost::asio::buffer(std::string("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le")));
  // Meanwhile, others are served.
  for (int i = 0; i < 3; ++i) {
    CHECK(http_request(server.port(), http::verb::get, "/healthz").status == 200);
  }
  char byte;
  boost::system::error_code ec;
  slow.read_some(boost::asio::buffer(&byte, 1), ec);
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(ec == boost::asio::error::eof);
  CHECK(waited >= 0.9);
  CHECK(waited < 5);
}

TEST_CASE("keep-alive carries several requests on one connection", "[server][http]") {
  TestServer server;
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), server.port()));
  beast::flat_buffer buffer;
  for (int i = 0; i < 3; ++i) {
    http::request<http::string_body> req{http::verb::get, "/healthz", 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(stream, req);
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    CHECK(res.result_int() == 200);
    CHECK(res.keep_alive());
  }
}

TEST_CASE("metrics count responses and generated tokens in the Prometheus format",
          "[server][http][metrics]") {
  TestServer server;
  post_json(server.port(), "/v1/chat/completions",
            R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})");
  http_request(server.port(), http::verb::get, "/nothing");
  // A response is counted once its write completes, which may be just after the client has read it.
  std::string m;
  int scrapes = 0;  // earlier scrapes were 200s too
  for (; scrapes < 200; ++scrapes) {
    m = http_request(server.port(), http::verb::get, "/metrics").body;
    if (m.find("mnemo_http_requests_total{code=\"404\"} 1") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(m.find("mnemo_http_requests_total{code=\"200\"} " + std::to_string(1 + scrapes)) != std::string::npos);
  CHECK(m.find("mnemo_http_requests_total{code=\"404\"} 1") != std::string::npos);
  CHECK(m.find("mnemo_generated_tokens_total 3") != std::string::npos);
  CHECK(m.find("mnemo_request_seconds_count 1") != std::string::npos);
  CHECK(m.find("mnemo_request_seconds_bucket{le=\"+Inf\"} 1") != std::string::npos);
  CHECK(m.find("# TYPE mnemo_sessions gauge\nmnemo_sessions 0") != std::string::npos);
  CHECK(m.find("mnemo_active_requests 1") != std::string::npos);  // the scrape itself
  CHECK(m.find("mnemo_store_bytes") != std::string::npos);
}

TEST_CASE("a shutdown lets a request in flight finish and stops accepting",
          "[server][http][shutdown]") {
  auto server = std::make_unique<TestServer>();
  const uint16_t port = server->port();
  HttpResult result;
  std::thread client([&] {
    result = post_json(port, "/v1/chat/completions",
                       R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 60})");
  });
  while (server->metrics().generated_tokens() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  server->server().shutdown();
  client.join();
  CHECK(result.status == 200);
  CHECK(result.json().at("usage").at("completion_tokens") == 60);
  server->server().wait();
  CHECK_THROWS(http_request(port, http::verb::get, "/healthz"));
}

TEST_CASE("mnemo serve prints its address, serves, and exits cleanly on SIGTERM",
          "[server][http][cli]") {
  fs::path dir = fs::temp_directory_path() / ("mnemo-serve-cli-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string cmd = shell_quote(MNEMO_BINARY) + " serve --listen 127.0.0.1:0 --store " +
                    shell_quote((dir / "store").string()) + " --model " +
                    shell_quote(server_model_dir()) + " 2>" + shell_quote((dir / "err").string()) +
                    " & echo $!";
  FILE* p = ::popen(("exec sh -c " + shell_quote(cmd + "; wait")).c_str(), "r");
  REQUIRE(p);
  char line[256];
  REQUIRE(std::fgets(line, sizeof line, p));
  const int pid = std::atoi(line);
  REQUIRE(std::fgets(line, sizeof line, p));
  std::string listening(line);
  INFO(listening);
  REQUIRE(listening.rfind("listening on http://127.0.0.1:", 0) == 0);
  const auto port = static_cast<uint16_t>(std::stoi(listening.substr(listening.rfind(':') + 1)));
  CHECK(http_request(port, http::verb::get, "/healthz").status == 200);
  CHECK(http_request(port, http::verb::get, "/v1/models").json().at("data").at(0).at("id") == "tiny");
  ::kill(pid, SIGTERM);
  const int status = ::pclose(p);
  CHECK(WIFEXITED(status));
  std::ifstream err(dir / "err");
  std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  CHECK(text.find("serving without authentication") != std::string::npos);
  CHECK(text.find("stopped") != std::string::npos);
  fs::remove_all(dir);
}
