// The remote backend's pure parsers, on llama-server's recorded answers and on hand-written ones.
#include <mnemo/inference/remote_client.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "support/remote_data.h"

using namespace std::string_literals;
using mnemo::StatusCode;
using mnemo::inference::ChatChunkAccumulator;
using mnemo::inference::ChatEvent;
using mnemo::inference::ChatEventKind;
using mnemo::inference::json_error_offset;
using mnemo::inference::parse_chat_completion;
using mnemo::inference::parse_model_list;
using mnemo::inference::remote_api_url;
using mnemo::inference::remote_http_error;
using mnemo::inference::RemoteChatResult;
using mnemo::inference::RemoteStreamDecoder;
using mnemo::inference::SseEvent;
using mnemo::inference::SseParser;
using mnemo::test::remote_data;
using mnemo::test::remote_error_data;

namespace {

struct SseRun {
  std::vector<SseEvent> events;
  bool done = false;
  bool in_event = false;
};

SseRun sse_in_pieces(std::string_view bytes, size_t piece) {
  SseParser parser;
  SseRun run;
  for (size_t at = 0; at < bytes.size(); at += piece)
    parser.push(bytes.substr(at, piece), run.events);
  run.done = parser.done();
  run.in_event = parser.in_event();
  return run;
}

bool same_events(const std::vector<SseEvent>& a, const std::vector<SseEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].data != b[i].data || a[i].number != b[i].number || a[i].offset != b[i].offset) {
      return false;
    }
  }
  return true;
}

struct Decoded {
  mnemo::Result<RemoteChatResult> result = mnemo::Status::internal("not decoded");
  std::vector<ChatEvent> events;
};

Decoded decode_in_pieces(std::string_view bytes, size_t piece) {
  RemoteStreamDecoder decoder;
  Decoded out;
  for (size_t at = 0; at < bytes.size(); at += piece) {
    mnemo::Status status = decoder.push(bytes.substr(at, piece), out.events);
    if (!status.is_ok()) {
      out.result = status;
      return out;
    }
  }
  out.result = decoder.finish(out.events);
  return out;
}

std::string joined(const std::vector<ChatEvent>& events, ChatEventKind kind) {
  std::string text;
  for (const ChatEvent& e : events) {
    if (e.kind == kind) text += e.text;
  }
  return text;
}

bool same_chat_events(const std::vector<ChatEvent>& a, const std::vector<ChatEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind != b[i].kind || a[i].text != b[i].text || a[i].tool_index != b[i].tool_index ||
        a[i].name != b[i].name || a[i].arguments != b[i].arguments) {
      return false;
    }
  }
  return true;
}

// A vLLM-style tool-call stream: ids and names in the first delta of each call, arguments in
// pieces, the second call's pieces interleaved with the first's, a keep-alive comment, CRLF lines.
const std::string kToolStream =
    ": keep-alive\r\n\r\n"
    "data: "
    "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Let "
    "me "
    "check.\"},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\","
    "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
    "{\"arguments\":\"{\\\"city\\\": \"}}]}}]}\r\n\r\n"
    "event: message\r\nid: 4\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\","
    "\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"tz\\\"\"}}]}}]}"
    "\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
    "{\"arguments\":\"\\\"Paris\\\"}\"}}]}}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":"
    "{\"arguments\":\": \\\"UTC\\\"}\"}}]}}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\r\n\r\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":31}}\r\n\r\n"
    "data: [DONE]\r\n\r\n";

}  // namespace

TEST_CASE("remote: sse parser gives the same events for every split of the recorded streams",
          "[remote]") {
  for (const char* name : {"stream.sse", "tool_required.sse"}) {
    INFO(name);
    std::string bytes = remote_data(name);
    SseRun whole = sse_in_pieces(bytes, bytes.size());
    CHECK(whole.done);
    CHECK_FALSE(whole.in_event);
    CHECK(whole.events.size() == (std::string(name) == "stream.sse" ? 9u : 36u));
    CHECK(whole.events.front().offset == 0);
    CHECK(whole.events.front().data.rfind("{\"choices\"", 0) == 0);
    for (size_t piece = 1; piece <= bytes.size(); ++piece) {
      SseRun run = sse_in_pieces(bytes, piece);
      INFO("piece size " << piece);
      REQUIRE(same_events(run.events, whole.events));
      REQUIRE(run.done);
    }
  }
}

TEST_CASE("remote: sse parser joins data lines and ignores comments, event, id and retry lines",
          "[remote]") {
  std::string bytes =
      ": a comment\r\nevent: update\rid: 9\nretry: 100\r\ndata: one\r\ndata:two\r\ndata\r\n\r\n"
      "\n\n: only a comment\n\n"
      "data:  leading space kept after the first\n\n"
      "data: [DONE]\n\n"
      "data: after done\n\n";
  for (size_t piece = 1; piece <= bytes.size(); ++piece) {
    INFO("piece size " << piece);
    SseRun run = sse_in_pieces(bytes, piece);
    REQUIRE(run.events.size() == 2);
    CHECK(run.events[0].data == "one\ntwo\n");
    CHECK(run.events[0].number == 1);
    CHECK(run.events[0].offset == bytes.find("data: one"));
    CHECK(run.events[1].data == " leading space kept after the first");
    CHECK(run.events[1].number == 2);
    CHECK(run.done);
  }
}

TEST_CASE("remote: sse parser tells a stream cut inside an event from one cut between events",
          "[remote]") {
  SseRun between = sse_in_pieces("data: {}\n\n", 3);
  CHECK_FALSE(between.in_event);
  CHECK_FALSE(between.done);
  CHECK(sse_in_pieces("data: {}\n\ndata: {\"a", 4).in_event);
  // A data line without the blank line that ends its event is not an event yet.
  SseRun unterminated = sse_in_pieces("data: {}\n", 4);
  CHECK(unterminated.events.empty());
  CHECK(unterminated.in_event);
}

TEST_CASE("remote: stream decoder assembles llama-server's recorded stream in every split",
          "[remote]") {
  std::string bytes = remote_data("stream.sse");
  Decoded whole = decode_in_pieces(bytes, bytes.size());
  REQUIRE(whole.result);
  const RemoteChatResult& r = *whole.result;
  CHECK(r.message.content.empty());
  CHECK(r.message.reasoning_content ==
        "\011\357\277\275\002\357\277\275\000U\001\013\010\357\277\275\013\357\277\275\011\014a"s);
  CHECK(r.message.tool_calls.empty());
  CHECK(r.finish_reason == "length");
  CHECK(r.usage.prompt_tokens == 42);
  CHECK(r.usage.completion_tokens == 8);
  CHECK(joined(whole.events, ChatEventKind::kReasoningDelta) == r.message.reasoning_content);
  CHECK(whole.events.size() == 6);
  for (size_t piece = 1; piece < bytes.size(); ++piece) {
    INFO("piece size " << piece);
    Decoded run = decode_in_pieces(bytes, piece);
    REQUIRE(run.result);
    REQUIRE(run.result->message.reasoning_content == r.message.reasoning_content);
    REQUIRE(run.result->usage.completion_tokens == 8);
    REQUIRE(same_chat_events(run.events, whole.events));
  }
}

TEST_CASE("remote: stream decoder copes with a tools stream that holds no call", "[remote]") {
  // llama-server ignored tool_choice "required": the answer is reasoning noise and no call.
  std::string bytes = remote_data("tool_required.sse");
  for (size_t piece = 1; piece <= bytes.size(); piece += 7) {
    Decoded run = decode_in_pieces(bytes, piece);
    REQUIRE(run.result);
    CHECK(run.result->message.tool_calls.empty());
    CHECK(run.result->finish_reason == "length");
    CHECK(run.result->usage.prompt_tokens == 0);
    CHECK(run.result->message.reasoning_content.size() == 90);
  }
}

TEST_CASE(
    "remote: stream decoder assembles tool calls from their deltas and keeps the server's ids",
    "[remote]") {
  Decoded whole = decode_in_pieces(kToolStream, kToolStream.size());
  REQUIRE(whole.result);
  const RemoteChatResult& r = *whole.result;
  CHECK(r.message.content == "Let me check.");
  REQUIRE(r.message.tool_calls.size() == 2);
  CHECK(r.message.tool_calls[0].id == "call_a");
  CHECK(r.message.tool_calls[0].name == "get_weather");
  CHECK(r.message.tool_calls[0].arguments == R"({"city": "Paris"})");
  CHECK(r.message.tool_calls[1].id == "call_b");
  CHECK(r.message.tool_calls[1].name == "get_time");
  CHECK(r.message.tool_calls[1].arguments == R"({"tz": "UTC"})");
  CHECK(r.finish_reason == "tool_calls");
  CHECK(r.usage.prompt_tokens == 120);
  CHECK(r.usage.completion_tokens == 31);

  std::vector<std::pair<ChatEventKind, size_t>> order;
  for (const ChatEvent& e : whole.events) order.emplace_back(e.kind, e.tool_index);
  using K = ChatEventKind;
  CHECK(order == std::vector<std::pair<K, size_t>>{{K::kTextDelta, 0},
                                                   {K::kToolCallBegin, 0},
                                                   {K::kToolCallArgsDelta, 0},
                                                   {K::kToolCallBegin, 1},
                                                   {K::kToolCallArgsDelta, 1},
                                                   {K::kToolCallArgsDelta, 0},
                                                   {K::kToolCallArgsDelta, 1},
                                                   {K::kToolCallEnd, 0},
                                                   {K::kToolCallEnd, 1}});
  CHECK(whole.events[1].name == "get_weather");
  CHECK(whole.events[7].arguments == R"({"city": "Paris"})");
  CHECK(whole.events[8].name == "get_time");
  for (size_t piece = 1; piece < kToolStream.size(); ++piece) {
    INFO("piece size " << piece);
    Decoded run = decode_in_pieces(kToolStream, piece);
    REQUIRE(run.result);
    REQUIRE(same_chat_events(run.events, whole.events));
  }
}

TEST_CASE("remote: a malformed chunk is an error naming the chunk number and the byte",
          "[remote]") {
  std::string bad = R"({"choices":[{"delta":{"content":"x"}]})";
  std::string bytes = "data: {\"choices\":[]}\n\ndata: " + bad + "\n\ndata: [DONE]\n\n";
  size_t error_byte = bad.find("]}");
  CHECK(json_error_offset(bad) == error_byte);
  for (size_t piece : {size_t{1}, size_t{5}, bytes.size()}) {
    Decoded run = decode_in_pieces(bytes, piece);
    REQUIRE_FALSE(run.result);
    CHECK(run.result.status().code() == StatusCode::kCorruption);
    std::string m = run.result.status().message();
    INFO(m);
    CHECK(m.find("chunk 2 at stream byte " + std::to_string(bytes.find("data: " + bad))) == 0);
    CHECK(m.find("malformed JSON at byte " + std::to_string(error_byte) + " of the chunk") !=
          std::string::npos);
  }
}

TEST_CASE(
    "remote: a stream without [DONE] or cut inside an event is an error naming what is missing",
    "[remote]") {
  std::string bytes = remote_data("stream.sse");
  std::string without_done = bytes.substr(0, bytes.find("data: [DONE]"));
  Decoded ended = decode_in_pieces(without_done, 64);
  REQUIRE_FALSE(ended.result);
  CHECK(ended.result.status().message() ==
        "stream ended without the [DONE] sentinel after 9 complete chunks (" +
            std::to_string(without_done.size()) + " bytes)");
  std::string cut = bytes.substr(0, bytes.size() / 2);
  Decoded cut_run = decode_in_pieces(cut, 64);
  REQUIRE_FALSE(cut_run.result);
  CHECK(cut_run.result.status().message().find("stream cut inside an event, without the [DONE] "
                                               "sentinel") == 0);
}

TEST_CASE("remote: an error object inside a stream stops it with the server's message",
          "[remote]") {
  Decoded run = decode_in_pieces(
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
      "data: {\"error\":{\"message\":\"engine "
      "died\",\"type\":\"internal_error\",\"code\":500}}\n\n",
      10);
  REQUIRE_FALSE(run.result);
  CHECK(run.result.status().message() ==
        "chunk 2 at stream byte 57: the server sent an error: internal_error: engine died");
  CHECK(joined(run.events, ChatEventKind::kTextDelta) == "a");
}

TEST_CASE("remote: non-streamed body: llama-server's recorded answer, extra fields ignored",
          "[remote]") {
  auto r = parse_chat_completion(remote_data("plain.json"));
  REQUIRE(r);
  CHECK(r->message.content.empty());
  CHECK(r->message.reasoning_content ==
        "\002\033\003\357\277\275\015x\000V\000\034\357\277\275\000\357\277\275\013\357\277\275"s);
  CHECK(r->finish_reason == "length");
  CHECK(r->usage.prompt_tokens == 43);
  CHECK(r->usage.completion_tokens == 8);
}

TEST_CASE("remote: non-streamed body: tool calls with string or object arguments", "[remote]") {
  auto r = parse_chat_completion(R"({"choices":[{"index":0,"finish_reason":"tool_calls",
    "message":{"role":"assistant","content":null,"reasoning":"think",
    "tool_calls":[{"id":"call_1","type":"function","function":{"name":"ls","arguments":"{\"path\":\"/\"}"}},
                  {"id":"call_2","type":"function","function":{"name":"cat","arguments":{"file":"a b"}}}]}}]})");
  REQUIRE(r);
  CHECK(r->message.content.empty());
  CHECK(r->message.reasoning_content == "think");
  REQUIRE(r->message.tool_calls.size() == 2);
  CHECK(r->message.tool_calls[0].id == "call_1");
  CHECK(r->message.tool_calls[0].arguments == R"({"path":"/"})");
  CHECK(r->message.tool_calls[1].name == "cat");
  CHECK(r->message.tool_calls[1].arguments == R"({"file":"a b"})");
  CHECK(r->finish_reason == "tool_calls");

  auto bad = parse_chat_completion(R"({"choices":[{"index":0,"message":{"content":7}}]})");
  REQUIRE_FALSE(bad);
  CHECK(bad.status().message() ==
        "chat completion body: choices[0].message.content: expected a string or null");
}

TEST_CASE("remote: error bodies become statuses naming the HTTP status, type and message",
          "[remote]") {
  const std::string url = "http://127.0.0.1:9/v1/chat/completions";
  auto context = remote_error_data("error_context.json");
  CHECK(context.status == 400);
  auto s = remote_http_error(url, context.status, context.body);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(
      s.message() ==
      "remote http://127.0.0.1:9/v1/chat/completions: HTTP 400 exceed_context_size_error: request "
      "(60037 tokens) exceeds the available context size (8192 tokens), try increasing it");
  auto bad = remote_error_data("error_bad_request.json");
  CHECK(remote_http_error(url, bad.status, bad.body).message() ==
        "remote " + url + ": HTTP 400 invalid_request_error: Expected 'messages' to be an array");
  // vLLM's older top-level error, FastAPI's detail, a proxy's HTML, an empty body.
  CHECK(remote_http_error(url, 404,
                          R"({"object":"error","message":"model x does not exist",)"
                          R"("type":"NotFoundError","param":null,"code":404})")
            .message() == "remote " + url + ": HTTP 404 NotFoundError: model x does not exist");
  CHECK(remote_http_error(url, 404, "{}").code() == StatusCode::kNotFound);
  CHECK(remote_http_error(url, 422, R"({"detail":"bad field"})").message() ==
        "remote " + url + ": HTTP 422: bad field");
  auto gateway = remote_http_error(url, 502, "<html>Bad Gateway</html>\n");
  CHECK(gateway.code() == StatusCode::kIoError);
  CHECK(gateway.message() == "remote " + url + ": HTTP 502: <html>Bad Gateway</html>");
  CHECK(remote_http_error(url, 503, "").message() == "remote " + url + ": HTTP 503");
  CHECK(remote_http_error(url, 401, R"({"error":{"message":"no key","code":"invalid_api_key"}})")
            .message() == "remote " + url + ": HTTP 401 invalid_api_key: no key");
}

TEST_CASE("remote: json_error_offset points at the first wrong byte", "[remote]") {
  CHECK(json_error_offset(R"({"a": [1, 2.5e-3, true, null, "\u00e9\n"]})") ==
        std::string_view::npos);
  CHECK(json_error_offset("  {} ") == std::string_view::npos);
  CHECK(json_error_offset("") == 0);
  CHECK(json_error_offset("{\"a\" 1}") == 5);
  CHECK(json_error_offset("[1,]") == 3);
  CHECK(json_error_offset("[01]") == 2);
  CHECK(json_error_offset("{\"a\":tru}") == 8);
  CHECK(json_error_offset("{\"a\":1") == 6);
  CHECK(json_error_offset("\"tab\there\"") == 4);
  CHECK(json_error_offset("{} x") == 3);
}

TEST_CASE("remote: urls accept a base with or without /v1 and trailing slashes", "[remote]") {
  for (const char* base : {"http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/"}) {
    CHECK(remote_api_url(base, "chat/completions") == "http://h:1/v1/chat/completions");
  }
  CHECK(remote_api_url("https://api.deepseek.com", "models") ==
        "https://api.deepseek.com/v1/models");
  CHECK(remote_api_url("http://h/proxy/v1", "models") == "http://h/proxy/v1/models");
}

TEST_CASE("remote: model lists are read from data[].id", "[remote]") {
  auto ids =
      parse_model_list(R"({"object":"list","data":[{"id":"a","object":"model"},{"id":"b"}]})");
  REQUIRE(ids);
  CHECK(*ids == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(parse_model_list(R"({"models":[]})"));
}
