#pragma once
// An in-process server over the tiny preset model (real vocabulary, synthetic weights) and a small
// Beast client for the server tests.
#include <mnemo/inference/model.h>
#include <mnemo/inference/model_init.h>
#include <mnemo/server/openai_api.h>
#include <mnemo/server/server.h>

#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/test_paths.h"

namespace mnemo::test {

namespace fs = std::filesystem;

// `model init --preset tiny` once per build tree, shared by the test processes (built under a
// private name and renamed into place).
inline std::string server_model_dir() {
  static const std::string dir = [] {
    fs::path target = fs::path(MNEMO_SERVER_TEST_DIR) / "tiny";
    if (!fs::exists(target / "tokenizer.json")) {
      fs::path tmp = fs::path(MNEMO_SERVER_TEST_DIR) / ("tiny-" + std::to_string(::getpid()));
      fs::remove_all(tmp);
      REQUIRE(inference::init_model(tmp.string(), inference::preset_config(inference::ModelPreset::kTiny), {},
                                    fs::path(v3_tokenizer_path()).parent_path().string()));
      std::error_code ec;
      fs::rename(tmp, target, ec);  // another process may have won the race: fine
      fs::remove_all(tmp);
    }
    return target.string();
  }();
  return dir;
}

struct TestServerOptions {
  std::shared_ptr<const server::Authenticator> auth;
  std::chrono::milliseconds read_timeout{5000};
  uint64_t body_limit = 1024 * 1024;
  int64_t max_context = 0;
  std::string listen = "127.0.0.1:0";
  // Extra routes (e.g. one that echoes the tenant).
  std::function<void(server::Router&)> routes;
};

class TestServer {
 public:
  explicit TestServer(TestServerOptions o = {}) {
    auto model = inference::Model::load(server_model_dir());
    REQUIRE(model);
    model_ = std::move(model).value();
    auto tokenizer = inference::Tokenizer::load(server_model_dir() + "/tokenizer.json");
    REQUIRE(tokenizer);
    metrics_ = std::make_shared<server::Metrics>();
    server::OpenAiOptions ao;
    ao.model_id = "tiny";
    ao.max_context = o.max_context;
    auto api = server::OpenAiApi::create(*model_, std::move(tokenizer).value(), ao, metrics_);
    REQUIRE(api);
    api_ = std::move(api).value();
    auto router = std::make_shared<server::Router>();
    server::add_health_routes(*router, metrics_);
    api_->add_routes(*router);
    if (o.routes) o.routes(*router);
    server::ServerOptions so;
    so.listen = o.listen;
    so.auth = o.auth;
    so.read_timeout = o.read_timeout;
    so.body_limit = o.body_limit;
    so.shutdown_grace = std::chrono::milliseconds(5000);
    auto s = server::Server::start(so, router, metrics_);
    REQUIRE(s);
    server_ = std::move(s).value();
  }
  ~TestServer() {
    server_->shutdown();
    server_->wait();
    api_.reset();
    server_.reset();
  }
  uint16_t port() const { return server_->port(); }
  server::Server& server() { return *server_; }
  server::Metrics& metrics() { return *metrics_; }

 private:
  std::unique_ptr<inference::Model> model_;
  std::shared_ptr<server::Metrics> metrics_;
  std::unique_ptr<server::OpenAiApi> api_;
  std::unique_ptr<server::Server> server_;
};

struct HttpResult {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  boost::json::value json() const { return boost::json::parse(body); }
};

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

// One request on a fresh connection (or on `stream` when given, for keep-alive).
inline HttpResult http_request(uint16_t port, http::verb method, const std::string& target,
                               const std::string& body = {},
                               const std::map<std::string, std::string>& headers = {}) {
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(50));
  stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == http::verb::post) {
    if (!headers.count("Content-Type")) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  http::read(stream, buffer, parser);
  HttpResult r;
  r.status = parser.get().result_int();
  r.body = parser.get().body();
  for (const auto& f : parser.get()) r.headers[std::string(f.name_string())] = std::string(f.value());
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return r;
}

inline HttpResult post_json(uint16_t port, const std::string& target, const std::string& body,
                            const std::map<std::string, std::string>& headers = {}) {
  return http_request(port, http::verb::post, target, body, headers);
}

// The `data:` payloads of an SSE body, in order.
inline std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(at, end - at);
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
    at = end + 1;
  }
  return out;
}

inline const char* kWeatherTools = R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
   "parameters": {"type": "object", "properties": {
     "location": {"type": "string"},
     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
   "required": ["location", "unit"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "add", "description": "Adds two integers.",
   "parameters": {"type": "object", "properties": {
     "a": {"type": "integer"}, "b": {"type": "integer"}},
   "required": ["a", "b"], "additionalProperties": false}}}])";

}  // namespace mnemo::test
