// WebSocket sessions over real sockets: create and stream, reconnect with after_seq (no gaps, no
// duplicates), input.message on a finished session, approvals, tenant isolation, and bad input
// (malformed JSON, unknown types, oversized frames, invalid UTF-8, slow clients) that never
// disturbs another session.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "server/agent_server_util.h"

using namespace mnemo;
using namespace mnemo::test;
namespace json = boost::json;

namespace {

json::value create_msg(const std::string& id, int steps, bool approval = false) {
  return json::object{{"type", "session.create"},
                      {"session_id", id},
                      {"job", json::parse(echo_job_json(steps, approval))}};
}

std::vector<uint64_t> durable_seqs(const std::vector<json::value>& msgs) {
  std::vector<uint64_t> out;
  for (const auto& m : msgs) {
    if (!m.as_object().contains("unix_ms")) continue;  // only durable events carry it
    out.push_back(m.at("seq").to_number<uint64_t>());
  }
  return out;
}

bool contiguous_from(const std::vector<uint64_t>& seqs, uint64_t first) {
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i] != first + i) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("ws: session.create streams durable events and deltas until run.finished",
          "[server][ws]") {
  AgentServer server;
  WsClient c(server.port());
  c.send(json::object{{"type", "ping"}, {"data", 42}});
  auto pong = c.recv();
  REQUIRE(pong);
  CHECK(type_of(*pong) == "pong");
  CHECK(pong->at("data") == 42);

  c.send(create_msg("ws-one", 2));
  auto msgs = c.until_finished(server.store(), "ws-one");
  REQUIRE(!msgs.empty());
  CHECK(type_of(msgs.front()) == "session.created");
  CHECK(msgs.front().at("session_id") == "ws-one");
  auto seqs = durable_seqs(msgs);
  CHECK(contiguous_from(seqs, 1));
  CHECK(seqs.back() == server.store().session("ws-one")->last_seq);
  bool delta = false, message = false, output = false;
  uint64_t last = 0;
  for (const auto& m : msgs) {
    const std::string t = type_of(m);
    if (t == "tool.exec.output.delta") {
      // The command's own output, live, naming its call and stream.
      output = output ||
               (m.at("stream") == "stdout" &&
                std::string(m.at("text").as_string()).find("hello-call_") != std::string::npos &&
                std::string(m.at("call_id").as_string()).rfind("call_", 0) == 0);
    }
    if (t.find(".delta") != std::string::npos) {
      delta = true;
      CHECK(m.at("seq").to_number<uint64_t>() == last + 1);  // the seq it leads to
    } else {
      last = m.at("seq").to_number<uint64_t>();
    }
    if (t == "message") {
      message = true;
      CHECK(m.at("payload").at("tool_calls").as_array().size() >= 1);
      CHECK(!m.at("payload").as_object().contains("tokens"));
    }
  }
  CHECK(delta);
  CHECK(message);
  CHECK(output);
  CHECK(server.metrics().render().find("mnemo_ws_connections 1") != std::string::npos);
}

TEST_CASE("ws: a client that drops mid-run and resumes with after_seq misses nothing",
          "[server][ws]") {
  AgentServer server;
  std::vector<json::value> first;
  {
    WsClient c(server.port());
    c.send(create_msg("ws-drop", 6));
    // Read a few durable events, then vanish without a close handshake.
    while (durable_seqs(first).size() < 4) {
      auto m = c.recv();
      REQUIRE(m);
      first.push_back(*m);
    }
    c.drop();
  }
  auto seen = durable_seqs(first);
  REQUIRE(contiguous_from(seen, 1));
  const uint64_t after = seen.back();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // events go on meanwhile

  WsClient again(server.port());
  again.send(
      json::object{{"type", "session.resume"}, {"session_id", "ws-drop"}, {"after_seq", after}});
  auto resumed = again.recv();
  REQUIRE(resumed);
  CHECK(type_of(*resumed) == "session.attached");
  CHECK(resumed->at("after_seq") == after);
  auto rest = again.until_finished(server.store(), "ws-drop");
  REQUIRE(!rest.empty());
  auto seqs = durable_seqs(rest);
  CHECK(contiguous_from(seqs, after + 1));  // exactly what was missed, in order, then live

  // Everything matches the store.
  auto stored = server.store().read_events("ws-drop");
  REQUIRE(stored);
  CHECK(stored->size() == after + seqs.size());

  // A second resume of the finished session replays from the store alone.
  WsClient third(server.port());
  third.send(json::object{{"type", "session.resume"}, {"session_id", "ws-drop"}, {"after_seq", 0}});
  auto replay = third.until_finished(server.store(), "ws-drop");
  CHECK(contiguous_from(durable_seqs(replay), 1));
  CHECK(durable_seqs(replay).size() == stored->size());
}

TEST_CASE("ws: input.message continues a finished session with a new run", "[server][ws]") {
  AgentServer server;
  WsClient c(server.port());
  // No tools: a plain turn (Runtime::input after a tool-result step is refused by the agent's
  // prefix check today; see the report).
  c.send(json::object{{"type", "session.create"},
                      {"session_id", "ws-chat"},
                      {"job", json::parse(R"({"input": "Hi.", "sampling": {"seed": 3},
                                 "limits": {"max_steps": 1, "max_turn_tokens": 16}})")}});
  auto run1 = c.until_finished(server.store(), "ws-chat");
  REQUIRE(!run1.empty());
  const uint64_t last = server.store().session("ws-chat")->last_seq;
  c.send(json::object{{"type", "input.message"}, {"session_id", "ws-chat"}, {"content", "Again."}});
  auto run2 = c.until_finished(server.store(), "ws-chat");
  INFO("closed " << c.closed << " timed out " << c.timed_out);
  REQUIRE(!run2.empty());
  CHECK(type_of(run2.front()) == "input.message");
  CHECK(run2.front().at("seq").to_number<uint64_t>() == last + 1);
  CHECK(contiguous_from(durable_seqs(run2), last + 1));
  auto job = server.hub().load("ws-chat");
  REQUIRE(job);
  CHECK(job->inputs == 2);
}

TEST_CASE("ws: tool.approval approves a waiting call and the run goes on", "[server][ws]") {
  AgentServer server;
  WsClient c(server.port());
  c.send(create_msg("ws-approve", 1, true));
  auto msgs = c.until("tool.approval_required");
  REQUIRE(type_of(msgs.back()) == "tool.approval_required");
  const std::string call(msgs.back().at("payload").at("call_id").as_string());
  c.send(json::object{{"type", "tool.approval"},
                      {"session_id", "ws-approve"},
                      {"call_id", "nope"},
                      {"decision", "approve"}});
  auto err = c.until("error", std::chrono::seconds(10));
  REQUIRE(!err.empty());
  CHECK(type_of(err.back()) == "error");
  c.send(json::object{{"type", "tool.approval"},
                      {"session_id", "ws-approve"},
                      {"call_id", call},
                      {"decision", "approve"}});
  auto rest = c.until("run.finished");
  bool approval = false, result = false;
  for (const auto& m : rest) {
    approval = approval || type_of(m) == "tool.approval";
    if (type_of(m) == "tool.result") {
      result = true;
      CHECK(std::string(m.at("payload").at("content").as_string()).find("hello-" + call) !=
            std::string::npos);
    }
  }
  CHECK(approval);
  CHECK(result);
}

TEST_CASE("ws: run.cancel stops a running session", "[server][ws]") {
  AgentServer server;
  WsClient c(server.port());
  c.send(create_msg("ws-cancel", 200));
  auto first = c.until("session.created");
  REQUIRE(!first.empty());
  c.send(json::object{{"type", "run.cancel"}, {"session_id", "ws-cancel"}});
  auto rest = c.until("run.finished");
  REQUIRE(type_of(rest.back()) == "run.finished");
  CHECK(rest.back().at("payload").at("reason") == "cancelled");
}

TEST_CASE("ws: another tenant's session is not found", "[server][ws][auth]") {
  AgentServer server({.keys = true});
  WsClient a(server.port(), server.key_a);
  a.send(create_msg("ws-mine", 1));
  REQUIRE(type_of(a.until("run.finished").back()) == "run.finished");
  WsClient b(server.port(), server.key_b);
  for (const char* type : {"session.resume", "input.message", "run.cancel", "tool.approval"}) {
    b.send(json::object{{"type", type},
                        {"session_id", "ws-mine"},
                        {"after_seq", 0},
                        {"content", "x"},
                        {"call_id", "x"},
                        {"decision", "approve"}});
    auto m = b.recv();
    REQUIRE(m);
    CHECK(type_of(*m) == "error");
    CHECK(m->at("code") == "not_found");
  }
  // Without a key, no upgrade.
  CHECK_THROWS(WsClient(server.port()));
}

TEST_CASE("ws: bad input gets clean errors and never disturbs another session",
          "[server][ws][bad-input]") {
  AgentServer server({.ws = {.max_message = 64 * 1024}});
  WsClient good(server.port());
  good.send(create_msg("ws-good", 3));

  WsClient bad(server.port());
  bad.send(std::string("{not json"));
  auto m = bad.recv();
  REQUIRE(m);
  CHECK(m->at("code") == "invalid_json");
  bad.send(json::object{{"type", "session.explode"}});
  m = bad.recv();
  REQUIRE(m);
  CHECK(m->at("code") == "unknown_type");
  CHECK(std::string(m->at("message").as_string()).find("session.explode") != std::string::npos);
  bad.send(std::string("[1, 2]"));
  CHECK(bad.recv()->at("code") == "invalid_json");
  bad.send(json::object{{"type", "session.create"}, {"job", {{"name", "x"}, {"limts", 1}}}});
  m = bad.recv();
  CHECK(m->at("code") == "invalid_request");
  CHECK(std::string(m->at("message").as_string()).find("limts") != std::string::npos);
  // Invalid UTF-8 in a binary message: an error, the connection stays.
  bad.send(std::string("{\"type\": \"ping\", \"data\": \"\xff\xfe\"}"), true);
  CHECK(bad.recv()->at("code") == "invalid_utf8");
  bad.send(json::object{{"type", "session.resume"}, {"session_id", "ws-good"}, {"after_seq", -1}});
  m = bad.recv();
  REQUIRE(m);
  CHECK(m->at("code") == "invalid_request");
  CHECK_THAT(std::string(m->at("message").as_string()), Catch::Contains("after_seq"));
  bad.send(json::object{{"type", "ping"}});
  CHECK(type_of(*bad.recv()) == "pong");  // still up

  // Invalid UTF-8 in a text frame fails the connection with 1007 (RFC 6455).
  WsClient utf(server.port());
  utf.send(std::string("{\"type\": \"ping\", \"data\": \"\xc3\x28\"}"));
  CHECK(!utf.recv(std::chrono::seconds(5)));
  CHECK(utf.closed);
  CHECK(utf.close_reason().code == 1007);

  // An oversized message: close 1009.
  WsClient big(server.port());
  big.send(std::string(100 * 1024, ' '));
  CHECK(!big.recv(std::chrono::seconds(5)));
  CHECK(big.closed);
  CHECK(big.close_reason().code == websocket::close_code::too_big);

  // Slow loris: half an upgrade request, then silence: closed by the read timeout.
  {
    boost::asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), server.port()));
    boost::asio::write(
        s, boost::asio::buffer(std::string("GET /v1/sessions HTTP/1.1\r\nHost: x\r\nUpg")));
    char buf[512];
    beast::error_code ec;
    const auto t0 = std::chrono::steady_clock::now();
    while (!ec) s.read_some(boost::asio::buffer(buf), ec);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  }
  // The good session ran to its end undisturbed, in order.
  auto msgs = good.until_finished(server.store(), "ws-good");
  REQUIRE(!msgs.empty());
  CHECK(contiguous_from(durable_seqs(msgs), 1));
}

TEST_CASE("ws: a client that reads only after its run ended still gets every event in order",
          "[server][ws][backpressure]") {
  // A tiny queue and a small receive window: whatever the server could not send comes from the
  // store once the client reads (the drop and catch-up themselves: "ws feed: a full queue drops
  // events ..." below, which counts them).
  AgentServer server({.ws = {.max_queued = 2}});
  // A small receive window, so that what the client leaves unread backs up into the server.
  WsClient c(server.port(), {}, {}, 2048);
  c.send(create_msg("ws-slow", 8));
  // Not reading until the whole run is committed.
  auto finished = [&] {
    auto events = server.store().read_events("ws-slow");
    return events && !events->empty() && events->back().type == "run.finished";
  };
  for (int i = 0; i < 1200 && !finished(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(finished());
  auto msgs = c.until_finished(server.store(), "ws-slow");
  REQUIRE(!msgs.empty());
  auto seqs = durable_seqs(msgs);
  CHECK(contiguous_from(seqs, 1));
  auto stored = server.store().read_events("ws-slow");
  REQUIRE(stored);
  CHECK(seqs.size() == stored->size());
}

TEST_CASE("ws: a connection that stalls mid-frame is closed by the idle timeout",
          "[server][ws][bad-input]") {
  AgentServer server({.ws = {.idle_timeout = std::chrono::milliseconds(1000)}});
  // A WebSocket that sends half a frame and stalls: closed by the idle timeout.
  {
    boost::asio::io_context io;
    websocket::stream<beast::tcp_stream> ws(io);
    beast::get_lowest_layer(ws).connect(
        tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), server.port()));
    ws.handshake("127.0.0.1", "/v1/sessions");
    auto& sock = beast::get_lowest_layer(ws).socket();
    const unsigned char half[] = {0x81, 0x85, 1, 2, 3, 4, 'x'};  // masked text frame of 5, 1 sent
    boost::asio::write(sock, boost::asio::buffer(half));
    char buf[512];
    beast::error_code ec;
    const auto t0 = std::chrono::steady_clock::now();
    while (!ec) sock.read_some(boost::asio::buffer(buf), ec);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  }

  WsClient after(server.port());
  after.send(json::object{{"type", "ping"}});
  auto m = after.recv();
  REQUIRE(m);
  CHECK(type_of(*m) == "pong");
}

TEST_CASE("ws feed: a full queue drops events and the feed catches up from the store in order",
          "[server][ws][backpressure]") {
  fs::path dir = fs::temp_directory_path() / ("mnemo-feed-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    auto store = memory::Store::open(dir.string());
    REQUIRE(store);
    REQUIRE((*store)->create_session("s", "t"));
    boost::asio::io_context io;
    auto total = std::make_shared<std::atomic<int64_t>>(0);  // what /metrics reports
    auto feed = std::make_shared<server::Feed>(io.get_executor(), **store, 2, total);
    feed->watch("s", 1);  // after session.created
    for (int i = 0; i < 20; ++i) {
      memory::NewEvent e{"error", "{\"message\": \"e" + std::to_string(i) + "\"}"};
      auto seqs = (*store)->append_events("s", std::span<const memory::NewEvent>(&e, 1));
      REQUIRE(seqs);
      auto ev = (*store)->read_events("s", seqs->front() - 1, 1);
      feed->deliver(
          std::make_shared<server::HubMessage>(server::durable_message("s", ev->front())));
    }
    CHECK(feed->dropped() == 18);
    CHECK(*total == 18);  // mnemo_ws_events_replayed_total counts the durable ones left out
    std::vector<uint64_t> got;
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          while (got.size() < 20) {
            auto next = feed->next(std::chrono::milliseconds(500));
            auto batch = co_await std::move(next);
            if (batch.empty()) break;
            for (auto& m : batch) got.push_back(m->seq);
          }
        },
        boost::asio::detached);
    io.run();
    REQUIRE(got.size() == 20);
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == i + 2);
  }
  fs::remove_all(dir);
}
