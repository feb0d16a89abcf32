// The HTTP layer: API keys, the loopback rule, body caps, slow clients, keep-alive, routing errors,
// health and metrics, `mnemo serve` as a process.
#include <mnemo/memory/keys.h>
#include <mnemo/memory/store.h>

#include <signal.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "server/server_test_util.h"
#include "support/process.h"
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

namespace {

// `mnemo serve` as a process; its stdout goes to a file, read for the "listening on" line.
struct ServeProcess {
  fs::path dir;
  std::unique_ptr<Child> child;
  std::string listening;
  uint16_t port = 0;
  explicit ServeProcess(const std::string& name, const std::vector<std::string>& extra = {}) {
    dir = fs::temp_directory_path() / ("mnemo-serve-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::vector<std::string> argv = {MNEMO_BINARY,      "serve",
                                     "--listen",        "127.0.0.1:0",
                                     "--store",         (dir / "store").string(),
                                     "--model",         server_model_dir()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child = std::make_unique<Child>(argv, (dir / "out").string());
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (listening.empty() && std::chrono::steady_clock::now() < until) {
      std::ifstream out(dir / "out");
      std::getline(out, listening);
      if (listening.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!listening.empty())
      port = static_cast<uint16_t>(std::stoi(listening.substr(listening.rfind(':') + 1)));
  }
  ~ServeProcess() {
    child.reset();
    fs::remove_all(dir);
  }
};

}  // namespace

TEST_CASE("mnemo serve prints its address, serves, and exits cleanly on SIGTERM",
          "[server][http][cli]") {
  ServeProcess serve("cli");
  INFO(serve.listening);
  REQUIRE(serve.listening.rfind("listening on http://127.0.0.1:", 0) == 0);
  CHECK(http_request(serve.port, http::verb::get, "/healthz").status == 200);
  CHECK(http_request(serve.port, http::verb::get, "/v1/models").json().at("data").at(0).at("id") ==
        "tiny");
  serve.child->signal(SIGTERM);
  // mnemo's own exit status, not a shell's.
  CHECK(serve.child->finish() == 0);
  const std::string& text = serve.child->stderr_text();
  CHECK(text.find("serving without authentication") != std::string::npos);
  CHECK(text.find("stopped") != std::string::npos);
}

TEST_CASE("mnemo serve --tls-cert/--tls-key speaks HTTPS and refuses plain HTTP", "[server][tls]") {
  const std::string tls = std::string(MNEMO_TEST_DATA_DIR) + "/tls/";
  ServeProcess serve("tls", {"--tls-cert", tls + "cert.pem", "--tls-key", tls + "key.pem"});
  INFO(serve.listening);
  REQUIRE(serve.listening.rfind("listening on https://127.0.0.1:", 0) == 0);
  // A real client that verifies the server against the certificate.
  const std::string url = "https://127.0.0.1:" + std::to_string(serve.port);
  auto curl = [&](const std::string& args) {
    std::string out;
    FILE* p = ::popen(("curl -sS --max-time 20 --cacert " + shell_quote(tls + "cert.pem") + " " +
                       args + " 2>&1").c_str(),
                      "r");
    char buf[4096];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    if (p) ::pclose(p);
    return out;
  };
  CHECK(curl(url + "/healthz") == "ok\n");
  CHECK_THAT(curl("-H 'Content-Type: application/json' -d '{\"messages\": [{\"role\": \"user\", "
                  "\"content\": \"Hi\"}], \"max_tokens\": 3}' " + url + "/v1/chat/completions"),
             Catch::Contains("chat.completion"));
  // Plain HTTP to the TLS port gets no answer.
  CHECK_THROWS(http_request(serve.port, http::verb::get, "/healthz"));
  // A WebSocket session over TLS (wss://), the certificate verified.
  {
    boost::asio::io_context io;
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_client);
    ctx.load_verify_file(tls + "cert.pem");
    ctx.set_verify_mode(boost::asio::ssl::verify_peer);
    beast::websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(io, ctx);
    beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(20));
    beast::get_lowest_layer(ws).connect(
        tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), serve.port));
    SSL_set_tlsext_host_name(ws.next_layer().native_handle(), "localhost");
    ws.next_layer().handshake(boost::asio::ssl::stream_base::client);
    ws.handshake("127.0.0.1:" + std::to_string(serve.port), "/v1/sessions");
    ws.write(boost::asio::buffer(std::string(R"({"type": "ping", "data": 7})")));
    beast::flat_buffer buffer;
    ws.read(buffer);
    json::value pong = json::parse(beast::buffers_to_string(buffer.data()));
    CHECK(pong.at("type") == "pong");
    CHECK(pong.at("data") == 7);
    ws.close(beast::websocket::close_code::normal);
  }
  serve.child->signal(SIGTERM);
  CHECK(serve.child->finish() == 0);
}

TEST_CASE("mnemo serve refuses plain HTTP beyond loopback, and a key without its certificate",
          "[server][tls][cli]") {
  const std::string store = "/tmp/mnemo-tls-store-" + std::to_string(::getpid());
  REQUIRE(run_cli("keys add --tenant t --store " + store).status == 0);
  auto run = [&](const std::string& args) { return run_cli("serve --store " + store + " " + args); };
  CliResult plain = run("--listen 0.0.0.0:0");
  CHECK(plain.status == 1);
  CHECK_THAT(plain.err, Catch::Contains("--tls-cert"));
  const std::string tls = std::string(MNEMO_TEST_DATA_DIR) + "/tls/";
  CliResult half = run("--listen 127.0.0.1:0 --tls-cert " + shell_quote(tls + "cert.pem"));
  CHECK(half.status == 1);
  CHECK_THAT(half.err, Catch::Contains("go together"));
  fs::remove_all(store);
}
