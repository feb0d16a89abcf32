// The remote client over real sockets and real libcurl, against a loopback server that answers with
// llama-server's recorded bodies, errors, stalls and cut streams.
#include <mnemo/inference/remote_client.h>
#include <simdjson.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "support/loopback_http.h"
#include "support/remote_data.h"

using mnemo::StatusCode;
using mnemo::inference::ChatEvent;
using mnemo::inference::ChatEventKind;
using mnemo::inference::is_remote_cancellation;
using mnemo::inference::RemoteChatClient;
using mnemo::inference::RemoteChatRequest;
using mnemo::inference::RemoteEndpoint;
using mnemo::test::HttpExchange;
using mnemo::test::LoopbackHttpServer;
using mnemo::test::remote_data;
using mnemo::test::remote_error_data;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

const std::string kMessages = R"([{"role":"user","content":"What is the weather in Paris?"}])";
const std::string kTools =
    R"([{"type":"function","function":{"name":"get_weather","description":"Weather of a city",)"
    R"("parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}])";

RemoteEndpoint endpoint_for(const LoopbackHttpServer& server) {
  RemoteEndpoint e;
  e.base_url = server.base_url() + "/v1";
  e.model = "tiny-long.gguf";
  e.api_key = "sk-test-123";
  e.connect_timeout = milliseconds(2000);
  e.timeout = milliseconds(20000);
  e.max_retries = 3;
  e.backoff_base = milliseconds(5);
  return e;
}

RemoteChatRequest chat_request(bool stream = true) {
  RemoteChatRequest r;
  r.messages_json = kMessages;
  r.stream = stream;
  return r;
}

std::string chat_url(const LoopbackHttpServer& server) {
  return server.base_url() + "/v1/chat/completions";
}

void serve_recorded_stream(HttpExchange& x) {
  x.begin_chunked();
  x.send_chunked(remote_data("stream.sse"), 7);
  x.end_chunks();
}

long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

const std::string kStreamReasoning = std::string(
    "\011\357\277\275\002\357\277\275\000U\001\013\010\357\277\275\013\357\277\275\011\014a", 23);

}  // namespace

TEST_CASE("remote: client reads llama-server's recorded non-streamed answer", "[remote]") {
  std::string plain = remote_data("plain.json");
  LoopbackHttpServer server([&](HttpExchange& x) { x.respond(200, "application/json", plain); });
  RemoteChatClient client(endpoint_for(server));
  std::vector<ChatEvent> events;
  auto r = client.complete(
      chat_request(false), [&](const ChatEvent& e) { events.push_back(e); }, nullptr);
  REQUIRE(r);
  CHECK(r->finish_reason == "length");
  CHECK(r->usage.prompt_tokens == 43);
  CHECK(r->usage.completion_tokens == 8);
  CHECK(r->message.reasoning_content.size() == 23);
  CHECK(r->attempts == 1);
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == ChatEventKind::kReasoningDelta);
  CHECK(events[0].text == r->message.reasoning_content);
  REQUIRE(server.received().size() == 1);
  CHECK(server.received()[0].body.find("\"stream\":false") != std::string::npos);
  CHECK(server.received()[0].body.find("stream_options") == std::string::npos);
}

TEST_CASE("remote: client streams llama-server's recorded SSE answer event by event", "[remote]") {
  LoopbackHttpServer server(serve_recorded_stream);
  RemoteChatClient client(endpoint_for(server));
  std::string reasoning;
  int events = 0;
  auto r = client.complete(
      chat_request(),
      [&](const ChatEvent& e) {
        ++events;
        if (e.kind == ChatEventKind::kReasoningDelta) reasoning += e.text;
      },
      nullptr);
  REQUIRE(r);
  CHECK(r->message.reasoning_content == kStreamReasoning);
  CHECK(reasoning == kStreamReasoning);
  CHECK(events == 6);
  CHECK(r->message.content.empty());
  CHECK(r->finish_reason == "length");
  CHECK(r->usage.prompt_tokens == 42);
  CHECK(r->usage.completion_tokens == 8);
}

TEST_CASE("remote: the request carries model, messages, tools, tool_choice, options and the key",
          "[remote]") {
  LoopbackHttpServer server(serve_recorded_stream);
  RemoteChatClient client(endpoint_for(server));
  RemoteChatRequest request = chat_request();
  request.tools_json = kTools;
  request.tool_choice_json = R"({"type":"function","function":{"name":"get_weather"}})";
  request.temperature = 0.7;
  request.top_p = 0.95;
  request.seed = 42;
  request.max_tokens = 64;
  REQUIRE(client.complete(request, nullptr, nullptr));

  REQUIRE(server.received().size() == 1);
  const auto got = server.received()[0];
  CHECK(got.method == "POST");
  CHECK(got.target == "/v1/chat/completions");
  CHECK(got.authorization == "Bearer sk-test-123");
  CHECK(got.content_type == "application/json");
  simdjson::dom::parser parser;
  simdjson::dom::element body;
  REQUIRE_FALSE(parser.parse(got.body).get(body));
  CHECK(body["model"].get_string().value() == "tiny-long.gguf");
  CHECK(body["messages"].at(0)["content"].get_string().value() == "What is the weather in Paris?");
  CHECK(body["tools"].at(0)["function"]["name"].get_string().value() == "get_weather");
  CHECK(body["tool_choice"]["function"]["name"].get_string().value() == "get_weather");
  CHECK(body["temperature"].get_double().value() == 0.7);
  CHECK(body["top_p"].get_double().value() == 0.95);
  CHECK(body["seed"].get_int64().value() == 42);
  CHECK(body["max_tokens"].get_int64().value() == 64);
  CHECK(body["stream"].get_bool().value());
  CHECK(body["stream_options"]["include_usage"].get_bool().value());

  // A request that is not JSON never leaves the machine.
  request.messages_json = "[{\"role\": ";
  auto bad = client.complete(request, nullptr, nullptr);
  REQUIRE_FALSE(bad);
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().message().find("request: messages: not valid JSON") != std::string::npos);
  CHECK(server.requests() == 1);
}

TEST_CASE("remote: HTTP 400 answers name the status, type and message and are not retried",
          "[remote]") {
  for (const char* name : {"error_context.json", "error_bad_request.json"}) {
    auto recorded = remote_error_data(name);
    LoopbackHttpServer server([&](HttpExchange& x) {
      x.respond(static_cast<int>(recorded.status), "application/json", recorded.body);
    });
    RemoteChatClient client(endpoint_for(server));
    auto r = client.complete(chat_request(), nullptr, nullptr);
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(server.requests() == 1);
    if (std::string(name) == "error_context.json") {
      CHECK(
          r.status().message() ==
          "remote " + chat_url(server) +
              ": HTTP 400 exceed_context_size_error: request (60037 tokens) exceeds the available "
              "context size (8192 tokens), try increasing it");
    } else {
      CHECK(r.status().message() == "remote " + chat_url(server) +
                                        ": HTTP 400 invalid_request_error: Expected 'messages' to "
                                        "be an array");
    }
  }
}

TEST_CASE("remote: a 503 and then a 200 is retried: two requests, one answer", "[remote]") {
  LoopbackHttpServer server([](HttpExchange& x) {
    if (x.number == 1) {
      x.respond(503, "application/json",
                R"({"error":{"message":"loading model","type":"unavailable_error"}})");
    } else {
      serve_recorded_stream(x);
    }
  });
  RemoteChatClient client(endpoint_for(server));
  auto r = client.complete(chat_request(), nullptr, nullptr);
  REQUIRE(r);
  CHECK(r->attempts == 2);
  CHECK(server.requests() == 2);
  CHECK(r->message.reasoning_content == kStreamReasoning);
}

TEST_CASE("remote: Retry-After is honoured before the next attempt", "[remote]") {
  LoopbackHttpServer server([](HttpExchange& x) {
    if (x.number == 1) {
      x.respond(429, "application/json", R"({"error":{"message":"slow down","type":"rate_limit"}})",
                "Retry-After: 1\r\n");
    } else {
      serve_recorded_stream(x);
    }
  });
  RemoteEndpoint endpoint = endpoint_for(server);
  endpoint.backoff_base = milliseconds(1);
  RemoteChatClient client(endpoint);
  auto start = Clock::now();
  auto r = client.complete(chat_request(), nullptr, nullptr);
  REQUIRE(r);
  CHECK(r->attempts == 2);
  CHECK(ms_since(start) >= 950);
}

TEST_CASE("remote: a 401 is not retried", "[remote]") {
  LoopbackHttpServer server([](HttpExchange& x) {
    x.respond(
        401, "application/json",
        R"j({"error":{"message":"Authentication Fails (no such user)","type":"authentication_error","param":null,"code":"invalid_request_error"}})j");
  });
  RemoteChatClient client(endpoint_for(server));
  auto r = client.complete(chat_request(), nullptr, nullptr);
  REQUIRE_FALSE(r);
  CHECK(server.requests() == 1);
  CHECK(r.status().message() == "remote " + chat_url(server) +
                                    ": HTTP 401 authentication_error: Authentication Fails (no "
                                    "such user)");
}

TEST_CASE("remote: retries stop after max_retries with the last error and the attempt count",
          "[remote]") {
  LoopbackHttpServer server(
      [](HttpExchange& x) { x.respond(502, "text/html", "<h1>Bad Gateway</h1>"); });
  RemoteEndpoint endpoint = endpoint_for(server);
  endpoint.max_retries = 2;
  RemoteChatClient client(endpoint);
  auto r = client.complete(chat_request(), nullptr, nullptr);
  REQUIRE_FALSE(r);
  CHECK(server.requests() == 3);
  CHECK(r.status().code() == StatusCode::kIoError);
  CHECK(r.status().message() == "remote " + chat_url(server) +
                                    ": HTTP 502: <h1>Bad Gateway</h1> (gave up after 3 attempts)");
}

TEST_CASE("remote: an unreachable server is an error naming the URL, after the retries",
          "[remote]") {
  // A port that was just free: nothing listens there.
  int port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }
  RemoteEndpoint endpoint;
  endpoint.base_url = "http://127.0.0.1:" + std::to_string(port);
  endpoint.model = "m";
  endpoint.max_retries = 1;
  endpoint.backoff_base = milliseconds(1);
  RemoteChatClient client(endpoint);
  auto r = client.complete(chat_request(), nullptr, nullptr);
  REQUIRE_FALSE(r);
  std::string m = r.status().message();
  INFO(m);
  CHECK(m.rfind("remote http://127.0.0.1:" + std::to_string(port) +
                    "/v1/chat/completions: cannot connect: ",
                0) == 0);
  CHECK(m.find("(gave up after 2 attempts)") != std::string::npos);
  auto models = client.list_models();
  REQUIRE_FALSE(models);
  CHECK(models.status().message().find("/v1/models: cannot connect") != std::string::npos);
}

TEST_CASE("remote: a stream cut in the middle is an error, not a silent retry", "[remote]") {
  std::string sse = remote_data("stream.sse");
  std::string half = sse.substr(0, sse.size() / 2);
  SECTION("the connection closes inside a chunked body") {
    LoopbackHttpServer server([&](HttpExchange& x) {
      x.begin_chunked();
      x.send_chunked(half, 11);
    });
    RemoteChatClient client(endpoint_for(server));
    int events = 0;
    auto r = client.complete(
        chat_request(), [&](const ChatEvent&) { ++events; }, nullptr);
    REQUIRE_FALSE(r);
    INFO(r.status().message());
    CHECK(events > 0);
    CHECK(server.requests() == 1);
    CHECK(r.status().message().rfind("remote " + chat_url(server) + ": stream cut after ", 0) == 0);
    CHECK(r.status().message().find("without the [DONE] sentinel") != std::string::npos);
  }
  SECTION("the connection closes at the end of an unframed body") {
    LoopbackHttpServer server([&](HttpExchange& x) {
      x.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" +
              half);
    });
    RemoteChatClient client(endpoint_for(server));
    int events = 0;
    auto r = client.complete(
        chat_request(), [&](const ChatEvent&) { ++events; }, nullptr);
    REQUIRE_FALSE(r);
    INFO(r.status().message());
    CHECK(events > 0);
    CHECK(server.requests() == 1);
    CHECK(
        r.status().message().rfind("remote " + chat_url(server) +
                                       ": stream cut inside an event, without the [DONE] sentinel",
                                   0) == 0);
  }
}

TEST_CASE("remote: a stalled server is a timeout error, not retried", "[remote]") {
  LoopbackHttpServer server([](HttpExchange& x) {
    x.begin_chunked();
    x.send_chunk(remote_data("stream.sse").substr(0, 300));
    x.stall();
  });
  RemoteEndpoint endpoint = endpoint_for(server);
  endpoint.timeout = milliseconds(300);
  RemoteChatClient client(endpoint);
  auto start = Clock::now();
  auto r = client.complete(chat_request(), nullptr, nullptr);
  REQUIRE_FALSE(r);
  INFO(r.status().message());
  CHECK(r.status().message().rfind("remote " + chat_url(server) + ": timed out after 300 ms", 0) ==
        0);
  CHECK(server.requests() == 1);
  CHECK(ms_since(start) < 3000);
}

TEST_CASE("remote: cancellation mid-stream returns promptly", "[remote]") {
  LoopbackHttpServer server([](HttpExchange& x) {
    x.begin_chunked();
    std::string sse = remote_data("stream.sse");
    // The role chunk and the first reasoning chunk, then nothing.
    x.send_chunk(sse.substr(0, sse.find("data:", sse.find("data:", 10) + 1)));
    x.stall();
  });
  RemoteChatClient client(endpoint_for(server));
  std::atomic<bool> cancel{false};
  std::atomic<bool> first_event{false};
  Clock::time_point cancelled_at;
  std::thread canceller([&] {
    auto give_up = Clock::now() + std::chrono::seconds(10);
    while (!first_event.load() && Clock::now() < give_up)
      std::this_thread::sleep_for(milliseconds(1));
    std::this_thread::sleep_for(milliseconds(100));
    cancelled_at = Clock::now();
    cancel = true;
  });
  auto r = client.complete(
      chat_request(), [&](const ChatEvent&) { first_event = true; }, &cancel);
  auto returned_at = Clock::now();
  canceller.join();
  CHECK(first_event.load());
  REQUIRE_FALSE(r);
  CHECK(is_remote_cancellation(r.status()));
  CHECK(r.status().message() == "remote " + chat_url(server) + ": request cancelled");
  // Returned on the cancel, not on the stream: the server never sends another byte, and the
  // attempt's own timeout is 10 minutes (the bound is generous for loaded machines).
  CHECK(returned_at >= cancelled_at);
  CHECK(std::chrono::duration_cast<milliseconds>(returned_at - cancelled_at).count() < 10000);
  CHECK(server.requests() == 1);
}

TEST_CASE("remote: cancellation during the backoff between attempts returns promptly", "[remote]") {
  LoopbackHttpServer server([](HttpExchange& x) { x.respond(503, "text/plain", "busy"); });
  RemoteEndpoint endpoint = endpoint_for(server);
  endpoint.backoff_base = milliseconds(20000);
  RemoteChatClient client(endpoint);
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    while (server.requests() < 1) std::this_thread::sleep_for(milliseconds(1));
    std::this_thread::sleep_for(milliseconds(100));
    cancel = true;
  });
  auto start = Clock::now();
  auto r = client.complete(chat_request(), nullptr, &cancel);
  canceller.join();
  REQUIRE_FALSE(r);
  CHECK(is_remote_cancellation(r.status()));
  CHECK(ms_since(start) < 15000);  // the backoff alone is 20 s: the cancel ended it
  CHECK(server.requests() == 1);
}

TEST_CASE("remote: list_models reads the ids from GET /v1/models with the key", "[remote]") {
  LoopbackHttpServer server([](HttpExchange& x) {
    x.respond(
        200, "application/json",
        R"({"object":"list","data":[{"id":"tiny-long.gguf","object":"model","owned_by":"llamacpp"}]})");
  });
  RemoteChatClient client(endpoint_for(server));
  auto models = client.list_models();
  REQUIRE(models);
  CHECK(*models == std::vector<std::string>{"tiny-long.gguf"});
  REQUIRE(server.received().size() == 1);
  CHECK(server.received()[0].method == "GET");
  CHECK(server.received()[0].target == "/v1/models");
  CHECK(server.received()[0].authorization == "Bearer sk-test-123");
}
