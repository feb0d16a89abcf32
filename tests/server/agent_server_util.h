#pragma once
// An in-process server with the job API and WebSocket sessions over a temporary store (the tiny
// preset model as the default model), and a small synchronous WebSocket client with deadlines.
#include <mnemo/memory/keys.h>
#include <mnemo/memory/store.h>
#include <mnemo/server/agent_hub.h>
#include <mnemo/server/jobs_api.h>
#include <mnemo/server/ws_sessions.h>

#include <boost/beast/websocket.hpp>

#include <optional>
#include <thread>

#include "server/server_test_util.h"

namespace mnemo::test {

// Jobs whose tool is a command (echo) forced by tool_choice: the tiny model has random weights. It
// runs isolated, as users' jobs do, and also writes its workspace (calls.log, a line per call).
inline std::string echo_job_json(int max_steps, bool approval = false) {
  return std::string(R"({"name": "echo-job", "instructions": "Use the echo tool.", "input": "Say hi.",
    "tools": [{"name": "echo", "description": "Print a greeting.",
               "command": "echo hello-$MNEMO_CALL_ID; echo $MNEMO_CALL_ID >> calls.log",
               "idempotent": true)") +
         (approval ? R"(, "approval": "always")" : "") + R"(}],
    "tool_choice": "required",
    "limits": {"max_steps": )" + std::to_string(max_steps) +
         R"(, "max_turn_tokens": 128}, "sampling": {"seed": 7}})";
}

struct AgentServerOptions {
  bool keys = false;  // two tenants, acme and globex, with a key each
  std::string config;  // the operator's YAML (mnemo serve --config); empty: the defaults
  std::chrono::milliseconds read_timeout{5000};
  server::WsOptions ws;
};

class AgentServer {
 public:
  explicit AgentServer(AgentServerOptions o = {}) {
    static int counter = 0;
    root_ = fs::temp_directory_path() /
            ("mnemo-agent-server-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(root_);
    auto s = memory::Store::open((root_ / "store").string());
    REQUIRE(s);
    store_ = std::move(s).value();
    if (o.keys) {
      auto a = memory::add_api_key(*store_, "acme");
      auto b = memory::add_api_key(*store_, "globex");
      REQUIRE(a);
      REQUIRE(b);
      key_a = a->key;
      key_b = b->key;
    }
    metrics_ = std::make_shared<server::Metrics>();
    server::HubOptions ho;
    ho.runtime.default_model_dir = server_model_dir();
    if (!o.config.empty()) {
      auto config = agent::parse_operator_config(o.config, "serve.yaml");
      INFO(config.status().message());
      REQUIRE(config);
      ho.runtime.config = std::make_shared<const agent::OperatorConfig>(*config);
    }
    ho.workspace_root = (root_ / "workspaces").string();
    hub_ = server::AgentHub::create(*store_, ho, metrics_);
    auto router = std::make_shared<server::Router>();
    server::add_health_routes(*router, metrics_);
    server::add_job_routes(*router, hub_);
    server::add_session_routes(*router, hub_, o.ws, metrics_);
    server::ServerOptions so;
    so.listen = "127.0.0.1:0";
    if (ho.runtime.config) so.allowed_origins = ho.runtime.config->allowed_origins;
    if (o.keys) so.auth = server::make_store_authenticator(*store_);
    so.read_timeout = o.read_timeout;
    so.shutdown_grace = std::chrono::milliseconds(2000);
    auto srv = server::Server::start(so, router, metrics_);
    REQUIRE(srv);
    server_ = std::move(srv).value();
  }
  ~AgentServer() {
    server_->shutdown();
    server_->wait();
    hub_->shutdown(std::chrono::seconds(10));
    server_.reset();
    hub_.reset();
    store_.reset();
    fs::remove_all(root_);
  }
  uint16_t port() const { return server_->port(); }
  server::AgentHub& hub() { return *hub_; }
  memory::Store& store() { return *store_; }
  server::Metrics& metrics() { return *metrics_; }
  // Where a job's tools work: WORKSPACES/TENANT/ID.
  fs::path workspace(const std::string& tenant, const std::string& id) const {
    return root_ / "workspaces" / tenant / id;
  }

  std::map<std::string, std::string> auth(const std::string& key) const {
    if (key.empty()) return {};
    return {{"Authorization", "Bearer " + key}};
  }

  std::string key_a, key_b;

 private:
  fs::path root_;
  std::unique_ptr<memory::Store> store_;
  std::shared_ptr<server::Metrics> metrics_;
  std::shared_ptr<server::AgentHub> hub_;
  std::unique_ptr<server::Server> server_;
};

// Polls GET /v1/jobs/{id} until `done` says so (or 50 s pass).
template <typename Pred>
boost::json::value wait_job(uint16_t port, const std::string& id, Pred done,
                            const std::map<std::string, std::string>& headers = {}) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(50);
  for (;;) {
    HttpResult r = http_request(port, http::verb::get, "/v1/jobs/" + id, {}, headers);
    REQUIRE(r.status == 200);
    boost::json::value v = r.json();
    if (done(v)) return v;
    REQUIRE(std::chrono::steady_clock::now() < until);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

namespace websocket = beast::websocket;

class WsClient {
 public:
  // `origin`: the Origin header a browser would send (none: a non-browser client).
  // `receive_buffer`: SO_RCVBUF in bytes before connecting (0: the system's), for a client whose
  // unread data should back up into the server quickly.
  explicit WsClient(uint16_t port, const std::string& key = {}, const std::string& origin = {},
                    int receive_buffer = 0)
      : ws_(io_) {
    auto& socket = beast::get_lowest_layer(ws_).socket();
    if (receive_buffer > 0) {
      socket.open(tcp::v4());
      socket.set_option(boost::asio::socket_base::receive_buffer_size(receive_buffer));
    }
    beast::get_lowest_layer(ws_).connect(
        tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    ws_.set_option(websocket::stream_base::decorator([key, origin](websocket::request_type& req) {
      if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
      if (!origin.empty()) req.set(http::field::origin, origin);
    }));
    ws_.read_message_max(64 * 1024 * 1024);
    ws_.handshake("127.0.0.1", "/v1/sessions");
  }

  void send(const std::string& text, bool binary = false) {
    ws_.binary(binary);
    ws_.write(boost::asio::buffer(text));
  }
  void send(const boost::json::value& v) { send(boost::json::serialize(v)); }

  // The next message; nullopt when the connection closed (close_code() tells why) or `wait` passed.
  std::optional<boost::json::value> recv(std::chrono::milliseconds wait = std::chrono::seconds(30)) {
    beast::flat_buffer buffer;
    beast::error_code ec;
    bool done = false;
    ws_.async_read(buffer, [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    io_.restart();
    io_.run_for(wait);
    if (!done) {
      beast::get_lowest_layer(ws_).cancel();
      io_.restart();
      io_.run();
      timed_out = true;
      return std::nullopt;
    }
    if (ec) {
      closed = true;
      return std::nullopt;
    }
    return boost::json::parse(beast::buffers_to_string(buffer.data()));
  }

  // Messages until one of type `type` (included), at most `wait` in all.
  std::vector<boost::json::value> until(const std::string& type,
                                        std::chrono::milliseconds wait = std::chrono::seconds(50)) {
    std::vector<boost::json::value> out;
    const auto end = std::chrono::steady_clock::now() + wait;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      auto m = recv(left);
      if (!m) break;
      out.push_back(*m);
      if (m->at("type") == type.c_str()) break;
    }
    return out;
  }

  // Messages until run.finished and then until the session's last stored event (a step's commit
  // may put step.committed after run.finished).
  std::vector<boost::json::value> until_finished(memory::Store& store, const std::string& id) {
    std::vector<boost::json::value> out = until("run.finished");
    if (out.empty() || out.back().at("type") != "run.finished") return out;
    const uint64_t last = store.session(id)->last_seq;
    uint64_t seen = out.back().at("seq").to_number<uint64_t>();
    while (seen < last) {
      auto m = recv(std::chrono::seconds(10));
      if (!m) break;
      out.push_back(*m);
      if (m->at("type") != "session.attached" && m->as_object().contains("seq"))
        seen = std::max(seen, m->at("seq").to_number<uint64_t>());
    }
    return out;
  }

  websocket::close_reason close_reason() const { return ws_.reason(); }
  void close() {
    beast::error_code ec;
    ws_.close(websocket::close_code::normal, ec);
  }
  // Drops the TCP connection without a close handshake (a client that vanished).
  void drop() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  bool closed = false;
  bool timed_out = false;

 private:
  boost::asio::io_context io_;
  websocket::stream<beast::tcp_stream> ws_;
};

inline std::string type_of(const boost::json::value& v) { return std::string(v.at("type").as_string()); }

}  // namespace mnemo::test
