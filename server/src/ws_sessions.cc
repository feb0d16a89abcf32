#include <mnemo/server/ws_sessions.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <iostream>
#include <string>

#include "request_util.h"

namespace mnemo::server {

namespace json = boost::json;
namespace websocket = beast::websocket;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadPiece = 64 * 1024;

std::string str_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

class WsConnection : public std::enable_shared_from_this<WsConnection> {
 public:
  WsConnection(std::shared_ptr<AgentHub> hub, WsOptions options, std::string tenant,
               Stream stream, HttpRequest request,
               std::shared_ptr<std::atomic<int64_t>> connections,
               std::shared_ptr<std::atomic<int64_t>> dropped)
      : hub_(std::move(hub)),
        options_(options),
        tenant_(std::move(tenant)),
        ws_(std::move(stream)),
        request_(std::move(request)),
        connections_(std::move(connections)),
        dropped_(std::move(dropped)) {}

  asio::awaitable<void> run();

 private:
  asio::awaitable<void> writer();
  // One whole client message into `buffer`; false when the connection ends (an oversized message
  // is answered with close 1009).
  asio::awaitable<bool> read_message(beast::flat_buffer& buffer);
  asio::awaitable<void> handle(std::string text, bool binary);
  void error(std::string code, std::string message, const json::object* request = nullptr);
  void send(const json::object& message);
  // The session when it exists for this tenant; else an error message and false.
  bool check_session(const std::string& id, const json::object& request);
  void watch(const std::string& id, uint64_t after_seq);
  void unwatch_all();

  asio::awaitable<void> create(const json::object& m);
  asio::awaitable<void> resume(const json::object& m);
  asio::awaitable<void> input(const json::object& m);
  asio::awaitable<void> cancel(const json::object& m);
  asio::awaitable<void> approval(const json::object& m);

  std::shared_ptr<AgentHub> hub_;
  WsOptions options_;
  std::string tenant_;
  websocket::stream<Stream> ws_;
  HttpRequest request_;
  std::shared_ptr<std::atomic<int64_t>> connections_;
  std::shared_ptr<std::atomic<int64_t>> dropped_;  // durable events not queued, all connections
  std::shared_ptr<Feed> feed_;
  bool closing_ = false;
};

void WsConnection::send(const json::object& message) {
  if (!feed_->push_control(json::serialize(message)) && !closing_) {
    // The client sends requests but does not read the answers: drop it.
    closing_ = true;
    ws_.next_layer().tcp().close();
  }
}

void WsConnection::error(std::string code, std::string message, const json::object* request) {
  json::object e{{"type", "error"}, {"code", std::move(code)}, {"message", std::move(message)}};
  if (request) {
    if (std::string t = str_field(*request, "type"); !t.empty()) e["request_type"] = t;
    if (std::string s = str_field(*request, "session_id"); !s.empty()) e["session_id"] = s;
    if (const json::value* id = request->if_contains("request_id")) e["request_id"] = *id;
  }
  send(e);
}

void WsConnection::watch(const std::string& id, uint64_t after_seq) {
  feed_->watch(id, after_seq, true);
  hub_->subscribe(id, feed_);
}

void WsConnection::unwatch_all() {
  for (const std::string& id : feed_->watched()) {
    hub_->unsubscribe(id, feed_.get());
    feed_->unwatch(id);
  }
}

bool WsConnection::check_session(const std::string& id, const json::object& request) {
  if (id.empty()) {
    error("invalid_request", "session_id is required", &request);
    return false;
  }
  if (!hub_->find(hub_->locate(tenant_, id), tenant_)) {
    error("not_found", "no session " + id, &request);
    return false;
  }
  return true;
}

asio::awaitable<void> WsConnection::run() {
  auto self = shared_from_this();
  websocket::stream_base::timeout timeout{};
  timeout.handshake_timeout = std::chrono::seconds(10);
  timeout.idle_timeout = options_.idle_timeout;
  timeout.keep_alive_pings = true;
  ws_.set_option(timeout);
  // The cap is enforced below, piece by piece, so that an oversized message gets a clean close
  // (1009) after its rest is drained; Beast's own limit would fail the connection and reset it
  // while the client still writes. This backstop never fires before our check.
  ws_.read_message_max(options_.max_message + kReadPiece + 1);
  auto accept = ws_.async_accept(request_, kTuple);
  auto [aec] = co_await std::move(accept);
  if (aec) co_return;
  ++*connections_;
  feed_ = std::make_shared<Feed>(ws_.get_executor(), hub_->store(), options_.max_queued, dropped_);
  asio::co_spawn(ws_.get_executor(), [self] { return self->writer(); }, asio::detached);
  beast::flat_buffer buffer;
  for (;;) {
    buffer.clear();
    auto read = read_message(buffer);
    const bool ok = co_await std::move(read);
    if (!ok) break;  // closed, timed out, too big (1009) or invalid UTF-8 in a text frame (1007)
    auto handled = handle(beast::buffers_to_string(buffer.data()), ws_.got_binary());
    co_await std::move(handled);
    if (closing_) break;
  }
  unwatch_all();
  feed_->close();
  --*connections_;
}

asio::awaitable<bool> WsConnection::read_message(beast::flat_buffer& buffer) {
  for (;;) {
    auto read = ws_.async_read_some(buffer, kReadPiece, kTuple);
    auto [ec, n] = co_await std::move(read);
    if (ec) co_return false;
    if (buffer.size() > options_.max_message) {
      // A clean close: Beast drains the rest of the client's frames until its close reply.
      closing_ = true;
      auto close = ws_.async_close(
          websocket::close_reason(websocket::close_code::too_big,
                                  "message over " + std::to_string(options_.max_message) +
                                      " bytes"),
          kTuple);
      co_await std::move(close);
      co_return false;
    }
    if (ws_.is_message_done()) co_return true;
  }
}

asio::awaitable<void> WsConnection::writer() {
  auto self = shared_from_this();
  for (;;) {
    auto next = feed_->next();
    auto batch = co_await std::move(next);
    if (batch.empty()) break;
    for (const auto& m : batch) {
      ws_.text(true);
      auto write = ws_.async_write(asio::buffer(m->envelope), kTuple);
      auto [ec, n] = co_await std::move(write);
      if (ec) {
        closing_ = true;
        beast::error_code ignored;
        ws_.next_layer().tcp().socket().close(ignored);
        co_return;
      }
    }
  }
}

asio::awaitable<void> WsConnection::handle(std::string text, bool binary) {
  if (auto at = invalid_utf8_at(text)) {
    error("invalid_utf8", "the message is not valid UTF-8 (byte " + std::to_string(*at) + ")");
    co_return;
  }
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    error("invalid_json", "the message is not JSON: " + ec.message());
    co_return;
  }
  if (!v.is_object()) {
    error("invalid_json", "a message must be a JSON object with a type");
    co_return;
  }
  const json::object& m = v.as_object();
  const std::string type = str_field(m, "type");
  if (type == "ping") {
    json::object pong{{"type", "pong"}};
    if (const json::value* d = m.if_contains("data")) pong["data"] = *d;
    send(pong);
  } else if (type == "session.create") {
    auto op = create(m);
    co_await std::move(op);
  } else if (type == "session.resume") {
    auto op = resume(m);
    co_await std::move(op);
  } else if (type == "input.message") {
    auto op = input(m);
    co_await std::move(op);
  } else if (type == "run.cancel") {
    auto op = cancel(m);
    co_await std::move(op);
  } else if (type == "tool.approval") {
    auto op = approval(m);
    co_await std::move(op);
  } else if (type.empty()) {
    error("invalid_request", "the message has no type", &m);
  } else {
    error("unknown_type",
          "unknown message type " + type +
              " (expected session.create, session.resume, input.message, run.cancel, "
              "tool.approval or ping)",
          &m);
  }
}

// {"type": "session.create", "session_id"?: "...", "job": {...}, "inputs"?: {...}}
asio::awaitable<void> WsConnection::create(const json::object& m) {
  const json::value* job = m.if_contains("job");
  if (!job || !job->is_object()) {
    error("invalid_request", "session.create needs a job object (the `mnemo run` schema)", &m);
    co_return;
  }
  json::object config = job->get_object();
  if (!config.contains("name")) config["name"] = "session";
  const std::string spec_text = json::serialize(config);
  auto spec = agent::parse_job_spec(spec_text, "job");
  if (!spec) {
    error("invalid_request", spec.status().message(), &m);
    co_return;
  }
  agent::NewJob nj;
  if (const json::value* in = m.if_contains("inputs")) {
    if (!in->is_object()) {
      error("invalid_request", "inputs must be an object of strings", &m);
      co_return;
    }
    for (const auto& [k, f] : in->get_object()) {
      if (!f.is_string()) {
        error("invalid_request", "inputs." + std::string(k) + " must be a string", &m);
        co_return;
      }
      nj.inputs[std::string(k)] = std::string(f.get_string());
    }
  }
  if (auto input = agent::render_input(*spec, nj.inputs); !input) {
    error("invalid_request", input.status().message(), &m);
    co_return;
  }
  std::string pub = str_field(m, "session_id");
  if (!pub.empty() && !valid_session_id(pub)) {
    error("invalid_request", std::string(kIdRule), &m);
    co_return;
  }
  if (pub.empty()) pub = agent::new_job_id(spec->name);
  // Ids are the tenant's own: another tenant's session of the same id is not this one.
  const std::string id = AgentHub::store_id(tenant_, pub);
  if (hub_->store().session(id)) {
    error("conflict", "session " + pub + " already exists", &m);
    co_return;
  }
  nj.spec = std::move(spec).value();
  nj.spec_yaml = spec_text;
  nj.spec_file = "session.create";
  nj.id = id;
  nj.tenant = tenant_;
  watch(id, 0);  // before the start: every event is seen
  auto start = hub_->start(std::move(nj));
  Result<std::string> started = co_await std::move(start);
  if (!started) {
    hub_->unsubscribe(id, feed_.get());
    feed_->unwatch(id);
    const StatusCode code = started.status().code();
    error(code == StatusCode::kInvalidArgument    ? "invalid_request"
          : code == StatusCode::kPermissionDenied ? "policy"
                                                  : "start_failed",
          started.status().message(), &m);
  }
}

// {"type": "session.resume", "session_id", "after_seq"}
asio::awaitable<void> WsConnection::resume(const json::object& m) {
  const std::string pub = str_field(m, "session_id");
  uint64_t after = 0;
  if (const json::value* a = m.if_contains("after_seq")) {
    if ((!a->is_int64() && !a->is_uint64()) || (a->is_int64() && a->get_int64() < 0)) {
      error("invalid_request", "after_seq must be a non-negative integer (a seq the client saw, or 0)",
            &m);
      co_return;
    }
    after = a->is_uint64() ? a->get_uint64() : static_cast<uint64_t>(a->get_int64());
  }
  if (!check_session(pub, m)) co_return;
  const std::string id = hub_->locate(tenant_, pub);
  auto state = hub_->load(id);
  if (!state) {
    error("not_found", state.status().message(), &m);
    co_return;
  }
  const bool running = hub_->running(id);
  // session.attached goes out before the events after after_seq (control messages come first).
  send(json::object{{"type", "session.attached"},
                    {"session_id", pub},
                    {"after_seq", after},
                    {"last_seq", state->last_seq},
                    {"status", running ? std::string("running")
                                       : std::string(agent::job_status_name(state->status()))}});
  watch(id, after);
  // An interrupted session (a restart) continues its run.
  if (!running && state->status() == agent::JobStatus::kInterrupted) {
    auto op = hub_->resume(id);
    Status s = co_await std::move(op);
    (void)s;  // it may have just been started by another connection
  }
}

// {"type": "input.message", "session_id", "content"}
asio::awaitable<void> WsConnection::input(const json::object& m) {
  const std::string pub = str_field(m, "session_id");
  if (!check_session(pub, m)) co_return;
  const std::string id = hub_->locate(tenant_, pub);
  const json::value* content = m.if_contains("content");
  if (!content || !content->is_string() || content->get_string().empty()) {
    error("invalid_request", "input.message needs a non-empty content string", &m);
    co_return;
  }
  if (!feed_->watching(id)) {
    auto info = hub_->store().session(id);
    watch(id, info ? info->last_seq : 0);
  }
  auto op = hub_->input(id, std::string(content->get_string()));
  Status s = co_await std::move(op);
  if (!s) error("conflict", s.message(), &m);
}

// {"type": "run.cancel", "session_id"}
asio::awaitable<void> WsConnection::cancel(const json::object& m) {
  const std::string pub = str_field(m, "session_id");
  if (!check_session(pub, m)) co_return;
  const std::string id = hub_->locate(tenant_, pub);
  auto op = hub_->cancel(id);
  Status s = co_await std::move(op);
  if (!s) error("conflict", s.message(), &m);
}

// {"type": "tool.approval", "session_id", "call_id", "decision": "approve" | "deny"}
asio::awaitable<void> WsConnection::approval(const json::object& m) {
  const std::string pub = str_field(m, "session_id");
  if (!check_session(pub, m)) co_return;
  const std::string id = hub_->locate(tenant_, pub);
  const std::string call = str_field(m, "call_id");
  const std::string decision = str_field(m, "decision");
  if (call.empty() || (decision != "approve" && decision != "deny")) {
    error("invalid_request", "tool.approval needs call_id and decision (approve or deny)", &m);
    co_return;
  }
  if (!feed_->watching(id)) {
    auto info = hub_->store().session(id);
    watch(id, info ? info->last_seq : 0);
  }
  auto op = hub_->decide(id, call, decision == "approve", "ws:" + tenant_);
  Status s = co_await std::move(op);
  if (!s)
    error(s.code() == StatusCode::kNotFound ? "not_found" : "conflict", s.message(), &m);
}

}  // namespace

void add_session_routes(Router& router, std::shared_ptr<AgentHub> hub, WsOptions options,
                        std::shared_ptr<Metrics> metrics) {
  auto connections = std::make_shared<std::atomic<int64_t>>(0);
  auto dropped = std::make_shared<std::atomic<int64_t>>(0);
  if (metrics) {
    std::weak_ptr<AgentHub> weak = hub;
    metrics->set_sessions_source([weak] {
      auto h = weak.lock();
      return h ? h->watched_sessions() : 0;
    });
    metrics->add_gauge("mnemo_ws_connections", "Open WebSocket connections.",
                       [connections] { return connections->load(); });
    metrics->add_counter("mnemo_ws_events_replayed_total",
                         "Durable events a slow WebSocket client's queue had no room for, sent "
                         "from the store once it read again.",
                         [dropped] { return dropped->load(); });
  }
  router.add(http::verb::get, "/v1/sessions",
             [hub, options, connections, dropped](Exchange& ex) -> asio::awaitable<void> {
               if (!websocket::is_upgrade(ex.request())) {
                 auto op = ex.respond_error(
                     http::status::bad_request,
                     "GET /v1/sessions is a WebSocket endpoint (send Upgrade: websocket)");
                 co_await std::move(op);
                 co_return;
               }
               HttpRequest request = ex.request();
               auto conn = std::make_shared<WsConnection>(hub, options, ex.tenant(),
                                                          ex.release_stream(), std::move(request),
                                                          connections, dropped);
               // The connection runs on its own: the HTTP request loop ends here.
               auto executor = co_await asio::this_coro::executor;
               asio::co_spawn(executor, [conn]() { return conn->run(); }, asio::detached);
             });
}

}  // namespace mnemo::server
