// The OpenAI-compatible API over real sockets: models, completions whole and streamed, forced tool
// calls whose arguments fit the schema, a tool result round trip, and request errors.
#include <mnemo/tools/json_schema.h>

#include <thread>

#include "server/server_test_util.h"

using namespace mnemo;
using namespace mnemo::test;
namespace json = boost::json;

namespace {

std::string chat_body(const std::string& extra) {
  return R"({"model": "tiny", "messages": [{"role": "user", "content": "What is the weather in Paris?"}])" +
         (extra.empty() ? std::string() : ", " + extra) + "}";
}

// Checks a call's arguments against the schema of the tool it names.
void check_call_valid(const json::value& call, const std::string& expected_name = {}) {
  REQUIRE(call.at("type") == "function");
  CHECK(std::string(call.at("id").as_string()).rfind("call_", 0) == 0);
  const std::string name(call.at("function").at("name").as_string());
  if (!expected_name.empty()) CHECK(name == expected_name);
  json::value tools = json::parse(kWeatherTools);
  const json::value* params = nullptr;
  for (const json::value& t : tools.as_array()) {
    if (t.at("function").at("name").as_string() == name) params = &t.at("function").at("parameters");
  }
  REQUIRE(params);
  auto schema = tools::JsonSchema::parse(json::serialize(*params));
  REQUIRE(schema);
  const std::string args(call.at("function").at("arguments").as_string());
  INFO(args);
  Status s = schema->validate(args);
  INFO(s.message());
  CHECK(s);
}

}  // namespace

TEST_CASE("GET /v1/models lists the loaded model", "[server][openai]") {
  TestServer server;
  HttpResult r = http_request(server.port(), http::verb::get, "/v1/models");
  REQUIRE(r.status == 200);
  json::value v = r.json();
  CHECK(v.at("object") == "list");
  REQUIRE(v.at("data").as_array().size() == 1);
  CHECK(v.at("data").at(0).at("id") == "tiny");
  CHECK(v.at("data").at(0).at("owned_by") == "mnemo");
  CHECK(http_request(server.port(), http::verb::get, "/v1/models/tiny").status == 200);
  CHECK(http_request(server.port(), http::verb::get, "/v1/models/other").status == 404);
}

TEST_CASE("a chat completion answers in OpenAI's shape, streamed or not, with the same text",
          "[server][openai]") {
  TestServer server;
  HttpResult whole = post_json(server.port(), "/v1/chat/completions",
                               chat_body(R"("max_tokens": 12, "seed": 7, "temperature": 0.8)"));
  REQUIRE(whole.status == 200);
  json::value v = whole.json();
  CHECK(v.at("object") == "chat.completion");
  CHECK(v.at("model") == "tiny");
  const json::value& choice = v.at("choices").at(0);
  CHECK(choice.at("message").at("role") == "assistant");
  CHECK(choice.at("finish_reason").is_string());
  const json::value& usage = v.at("usage");
  CHECK(usage.at("completion_tokens").as_int64() <= 12);
  CHECK(usage.at("prompt_tokens").as_int64() > 5);
  CHECK(usage.at("total_tokens").as_int64() ==
        usage.at("prompt_tokens").as_int64() + usage.at("completion_tokens").as_int64());

  HttpResult streamed = post_json(
      server.port(), "/v1/chat/completions",
      chat_body(R"("max_tokens": 12, "seed": 7, "temperature": 0.8, "stream": true,
                   "stream_options": {"include_usage": true})"));
  REQUIRE(streamed.status == 200);
  CHECK(streamed.headers["Content-Type"] == "text/event-stream");
  std::vector<std::string> events = sse_data(streamed.body);
  REQUIRE(events.size() >= 4);
  CHECK(events.back() == "[DONE]");
  std::string content;
  std::string finish;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    json::value c = json::parse(events[i]);
    CHECK(c.at("object") == "chat.completion.chunk");
    CHECK(c.at("usage").is_null());
    const json::value& ch = c.at("choices").at(0);
    if (i == 0) CHECK(ch.at("delta").at("role") == "assistant");
    if (const json::value* d = ch.at("delta").as_object().if_contains("content")) {
      content += std::string(d->as_string());
    }
    if (!ch.at("finish_reason").is_null()) finish = std::string(ch.at("finish_reason").as_string());
  }
  json::value last = json::parse(events[events.size() - 2]);
  CHECK(last.at("choices").as_array().empty());
  CHECK(last.at("usage") == usage);
  CHECK(finish == std::string(choice.at("finish_reason").as_string()));
  // The same request (seeded) gives the same text either way.
  const json::value& message_content = choice.at("message").at("content");
  CHECK(content == (message_content.is_null() ? "" : std::string(message_content.as_string())));
  CHECK(server.metrics().generated_tokens() >= 2 * usage.at("completion_tokens").as_int64());
}

TEST_CASE("sampled replies never contain special or placeholder tokens", "[server][openai]") {
  // The test model's random weights spread their mass over all 129,280 ids, 800 of them special
  // (<｜place▁holder▁no▁N｜>, role markers, BOS): unmasked, 600 sampled tokens hit several.
  TestServer server;
  for (int seed : {1, 2, 3}) {
    HttpResult r = post_json(server.port(), "/v1/chat/completions",
                             chat_body(R"("max_tokens": 200, "temperature": 1, "seed": )" +
                                       std::to_string(seed)));
    REQUIRE(r.status == 200);
    const json::value body = r.json();
    const json::value& message = body.at("choices").at(0).at("message");
    const std::string content = message.at("content").is_string()
                                    ? std::string(message.at("content").as_string())
                                    : std::string();
    INFO("seed " << seed << ": " << content);
    CHECK(content.find("<｜") == std::string::npos);
    CHECK(content.find("place▁holder") == std::string::npos);
    CHECK(content.find("<think>") == std::string::npos);
  }
}

TEST_CASE("tool_choice required and a named function give calls that fit the schema",
          "[server][openai]") {
  TestServer server;
  for (uint64_t seed : {1, 2}) {
    HttpResult r = post_json(server.port(), "/v1/chat/completions",
                             chat_body(std::string(R"("tools": )") + kWeatherTools +
                                       R"(, "tool_choice": "required", "temperature": 1.0,
                                       "seed": )" + std::to_string(seed)));
    REQUIRE(r.status == 200);
    json::value v = r.json();
    const json::value& choice = v.at("choices").at(0);
    CHECK(choice.at("finish_reason") == "tool_calls");
    REQUIRE(!choice.at("message").at("tool_calls").as_array().empty());
    CHECK(choice.at("message").at("content").is_null());
    for (const json::value& call : choice.at("message").at("tool_calls").as_array()) {
      check_call_valid(call);
    }
  }
  HttpResult named = post_json(
      server.port(), "/v1/chat/completions",
      chat_body(std::string(R"("tools": )") + kWeatherTools +
                R"(, "tool_choice": {"type": "function", "function": {"name": "add"}},
                   "parallel_tool_calls": false, "max_tokens": 40, "seed": 3)"));
  REQUIRE(named.status == 200);
  json::value v = named.json();
  const json::array& calls = v.at("choices").at(0).at("message").at("tool_calls").as_array();
  REQUIRE(calls.size() == 1);
  check_call_valid(calls[0], "add");
  // Ids derive from the request: the same request gives the same id.
  HttpResult again = post_json(
      server.port(), "/v1/chat/completions",
      chat_body(std::string(R"("tools": )") + kWeatherTools +
                R"(, "tool_choice": {"type": "function", "function": {"name": "add"}},
                   "parallel_tool_calls": false, "max_tokens": 40, "seed": 3)"));
  CHECK(again.json().at("choices").at(0).at("message").at("tool_calls").at(0).at("id") ==
        calls[0].at("id"));
}

TEST_CASE("a streamed forced call sends the id and name first, then the arguments",
          "[server][openai]") {
  TestServer server;
  HttpResult r = post_json(server.port(), "/v1/chat/completions",
                           chat_body(std::string(R"("tools": )") + kWeatherTools +
                                     R"(, "tool_choice": {"type": "function", "function":
                                     {"name": "get_weather"}}, "stream": true, "seed": 5)"));
  REQUIRE(r.status == 200);
  std::vector<std::string> events = sse_data(r.body);
  REQUIRE(events.back() == "[DONE]");
  std::string id, name, args, finish;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json::value parsed = json::parse(events[i]);
    const json::value& ch = parsed.at("choices").at(0);
    if (!ch.at("finish_reason").is_null()) finish = std::string(ch.at("finish_reason").as_string());
    const json::value* calls = ch.at("delta").as_object().if_contains("tool_calls");
    if (!calls) continue;
    const json::value& c = calls->at(0);
    CHECK(c.at("index") == 0);
    if (const json::value* cid = c.as_object().if_contains("id")) id = std::string(cid->as_string());
    const json::object& fn = c.at("function").as_object();
    if (const json::value* n = fn.if_contains("name")) name = std::string(n->as_string());
    if (const json::value* a = fn.if_contains("arguments")) args += std::string(a->as_string());
  }
  CHECK(finish == "tool_calls");
  CHECK(name == "get_weather");
  json::value call = {{"id", id}, {"type", "function"},
                      {"function", {{"name", name}, {"arguments", args}}}};
  check_call_valid(call, "get_weather");
}

TEST_CASE("a tool result goes back in a second request", "[server][openai]") {
  TestServer server;
  const std::string tools = std::string(R"("tools": )") + kWeatherTools;
  HttpResult first = post_json(server.port(), "/v1/chat/completions",
                               chat_body(tools + R"(, "tool_choice": "required", "seed": 1)"));
  REQUIRE(first.status == 200);
  json::value message = first.json().at("choices").at(0).at("message");
  const json::value& call = message.at("tool_calls").at(0);
  json::array messages = {
      json::object{{"role", "user"}, {"content", "What is the weather in Paris?"}}, message,
      json::object{{"role", "tool"}, {"tool_call_id", call.at("id")}, {"content", "21 degrees, sunny"}}};
  json::object body{{"model", "tiny"}, {"messages", messages}, {"tools", json::parse(kWeatherTools)},
                    {"tool_choice", "none"}, {"max_tokens", 8}, {"seed", 2}};
  HttpResult second = post_json(server.port(), "/v1/chat/completions", json::serialize(body));
  INFO(second.body);
  REQUIRE(second.status == 200);
  json::value v = second.json();
  CHECK(v.at("usage").at("prompt_tokens").as_int64() >
        first.json().at("usage").at("prompt_tokens").as_int64());
  // tool_choice "none": no call can start.
  CHECK(!v.at("choices").at(0).at("message").as_object().contains("tool_calls"));
  CHECK(v.at("choices").at(0).at("finish_reason") != "tool_calls");
}

TEST_CASE("thinking mode returns reasoning_content", "[server][openai]") {
  TestServer server;
  HttpResult r = post_json(server.port(), "/v1/chat/completions",
                           chat_body(R"("thinking": {"type": "enabled"}, "max_tokens": 10, "seed": 1)"));
  REQUIRE(r.status == 200);
  const json::value m = r.json().at("choices").at(0).at("message");
  REQUIRE(m.as_object().contains("reasoning_content"));
  CHECK(!m.at("reasoning_content").as_string().empty());
}

TEST_CASE("bad requests get 400 in OpenAI's error shape naming what is wrong",
          "[server][openai][errors]") {
  TestServer server({.max_context = 64});
  auto error_of = [&](const std::string& body) {
    HttpResult r = post_json(server.port(), "/v1/chat/completions", body);
    INFO(r.body);
    CHECK(r.status == 400);
    json::value e = r.json().at("error");
    CHECK(e.as_object().contains("type"));
    CHECK(e.as_object().contains("param"));
    CHECK(e.as_object().contains("code"));
    return e;
  };
  json::value e = error_of("{\"messages\": [\n  {\"role\": \"user\", \"content\": \"hi\"},]}");
  CHECK(std::string(e.at("message").as_string()).find("byte 51 (line 2, column 37)") !=
        std::string::npos);
  CHECK(e.at("type") == "invalid_request_error");
  e = error_of(chat_body(R"("temperature": 3)"));
  CHECK(e.at("param") == "temperature");
  e = error_of(R"({"messages": [{"role": "wizard", "content": "hi"}]})");
  CHECK(std::string(e.at("param").as_string()).rfind("messages[0]", 0) == 0);
  e = error_of(chat_body(std::string(R"("tools": )") + kWeatherTools +
                         R"(, "tool_choice": {"type": "function", "function": {"name": "nope"}})"));
  CHECK(e.at("param") == "tool_choice");
  CHECK(std::string(e.at("message").as_string()).find("nope") != std::string::npos);
  e = error_of(chat_body(R"("tool_choice": "sometimes")"));
  CHECK(e.at("param") == "tool_choice");
  e = error_of(R"({"messages": [{"role": "user", "content": ")" + std::string(400, 'x') +
               " " + std::string(400, 'y') + R"("}]})");
  CHECK(e.at("type") == "exceed_context_size_error");
  HttpResult wrong_model = post_json(server.port(), "/v1/chat/completions",
                                     R"({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]})");
  CHECK(wrong_model.status == 404);
  CHECK(wrong_model.json().at("error").at("code") == "model_not_found");
}

TEST_CASE("a completion whose client leaves is cancelled, during its prefill too",
          "[server][openai][disconnect]") {
  TestServer server;
  auto metric = [&](const std::string& name) {
    HttpResult m = http_request(server.port(), http::verb::get, "/metrics");
    const size_t at = m.body.find("\n" + name + " ");
    REQUIRE(at != std::string::npos);
    return std::stoll(m.body.substr(at + name.size() + 2));
  };
  std::string words;
  for (int i = 0; i < 6000; ++i) words += "w" + std::to_string(i) + " ";
  const std::string body = R"({"model": "tiny", "max_tokens": 4000, "messages": [{"role": "user", "content": ")" +
                           words + R"("}]})";
  const int64_t before = metric("mnemo_generated_tokens_total");
  {
    boost::asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), server.port()));
    const std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Content-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    boost::asio::write(s, boost::asio::buffer(req));
    // Accepted and running (the probe's own request is the other one)...
    const auto running_by = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (metric("mnemo_active_requests") < 2) {
      REQUIRE(std::chrono::steady_clock::now() < running_by);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // ...and its prompt of ~18k tokens still being prefilled when the client goes.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(metric("mnemo_generated_tokens_total") == before);
  }
  // The request ends soon after, long before its 4000 tokens would have been generated; nothing
  // else runs meanwhile.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (metric("mnemo_active_requests") > 1) {
    REQUIRE(std::chrono::steady_clock::now() < until);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(metric("mnemo_generated_tokens_total") - before < 4000);
}

TEST_CASE("top_p 0 is greedy, as in OpenAI's API, and equals temperature 0", "[server][openai]") {
  TestServer server;
  HttpResult a = post_json(server.port(), "/v1/chat/completions",
                           chat_body(R"("max_tokens": 8, "temperature": 0.9, "top_p": 0)"));
  INFO(a.body);
  REQUIRE(a.status == 200);
  HttpResult b = post_json(server.port(), "/v1/chat/completions",
                           chat_body(R"("max_tokens": 8, "temperature": 0)"));
  REQUIRE(b.status == 200);
  CHECK(a.json().at("choices").at(0).at("message").at("content") ==
        b.json().at("choices").at(0).at("message").at("content"));
  HttpResult bad = post_json(server.port(), "/v1/chat/completions", chat_body(R"("top_p": 2)"));
  CHECK(bad.status == 400);
  CHECK(bad.json().at("error").at("param") == "top_p");
}
