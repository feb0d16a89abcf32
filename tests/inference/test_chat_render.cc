#include <mnemo/inference/chat.h>
#include <simdjson.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "support/test_paths.h"

using mnemo::inference::Conversation;
using mnemo::inference::make_chat_codec;
using mnemo::inference::parse_conversation_json;

namespace {

struct RenderRecord {
  std::string id;
  std::string input_json;  // the record's `input`, re-serialised
  bool is_error = false;
  std::string rendered;
};

std::vector<RenderRecord> load_render_records(const std::string& file) {
  std::vector<RenderRecord> records;
  std::ifstream in(mnemo::test::data_path("chat/" + file));
  REQUIRE(in);
  simdjson::dom::parser parser;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    simdjson::dom::element doc;
    REQUIRE(!parser.parse(line).get(doc));
    RenderRecord r;
    std::string_view s;
    REQUIRE(!doc["id"].get(s));
    r.id = s;
    simdjson::dom::element input;
    REQUIRE(!doc["input"].get(input));
    r.input_json = simdjson::to_string(input);
    if (!doc["rendered"].get(s)) {
      r.rendered = s;
    } else {
      REQUIRE(!doc["error"].get(s));
      r.is_error = true;
    }
    records.push_back(std::move(r));
  }
  return records;
}

void check_golden_renders(const std::string& codec_name, const std::string& file,
                          size_t expected_records) {
  auto codec = make_chat_codec(codec_name);
  REQUIRE(codec);
  auto records = load_render_records(file);
  REQUIRE(records.size() == expected_records);
  size_t errors = 0;
  for (const RenderRecord& r : records) {
    INFO(r.id);
    auto conv = parse_conversation_json(r.input_json);
    REQUIRE(conv);
    auto prompt = (*codec)->render(*conv);
    if (r.is_error) {
      ++errors;
      CHECK_FALSE(prompt.is_ok());
    } else {
      REQUIRE(prompt.is_ok());
      CHECK(*prompt == r.rendered);
    }
  }
  if (codec_name == "v4") CHECK(errors == 1);
}

Conversation parse_ok(std::string_view json) {
  auto conv = parse_conversation_json(json);
  INFO(conv.status().message());
  REQUIRE(conv);
  return *conv;
}

std::string input_error(std::string_view json) {
  auto conv = parse_conversation_json(json);
  REQUIRE_FALSE(conv.is_ok());
  return conv.status().message();
}

}  // namespace

TEST_CASE("v4 codec renders every golden conversation byte for byte and rejects the bad one",
          "[chat]") {
  check_golden_renders("v4", "v4_render.jsonl", 42);
}

TEST_CASE("v3 codec renders every golden conversation byte for byte", "[chat]") {
  check_golden_renders("v3", "v3_render.jsonl", 24);
}

TEST_CASE("chat codecs are chosen by name and an unknown name is an error", "[chat]") {
  REQUIRE(make_chat_codec("v4"));
  CHECK((*make_chat_codec("v4"))->name() == "v4");
  CHECK((*make_chat_codec("v3"))->name() == "v3");
  auto bad = make_chat_codec("v5");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("v5") != std::string::npos);
  // Only V4 has an output parser.
  CHECK((*make_chat_codec("v4"))->make_output_parser(mnemo::inference::ThinkingMode::kChat));
  CHECK_FALSE((*make_chat_codec("v3"))->make_output_parser(mnemo::inference::ThinkingMode::kChat));
}

TEST_CASE("conversation input errors name the field that is wrong", "[chat]") {
  CHECK(input_error(R"({"messages": [{"role": "user", "content": "a"}, {"role": "user"},
      {"role": "foo", "content": "x"}]})") ==
        "messages[2].role: unknown role 'foo' (known: system, user, assistant, tool, "
        "latest_reminder)");
  CHECK(input_error("{\"messages\": [}").rfind("invalid JSON: ", 0) == 0);
  CHECK(input_error("[1]") == "conversation: expected an object, got an array");
  CHECK(input_error("{}") == "messages: missing");
  CHECK(input_error(R"({"messages": [{"content": "x"}]})") == "messages[0].role: missing");
  CHECK(input_error(R"({"messages": [{"role": "user", "content": 5}]})") ==
        "messages[0].content: expected a string, null or a list of text parts, got a number");
  CHECK(input_error(R"({"messages": [], "thinking_mode": "deep"})") ==
        "thinking_mode: unknown thinking mode 'deep' (use chat or thinking)");
  CHECK(input_error(R"({"messages": [], "drop_thinking": "yes"})") ==
        "drop_thinking: expected true or false, got a string");
  CHECK(input_error(R"({"messages": [{"role": "assistant", "content": null,
      "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": {"x": 1}}}]}]})") ==
        "messages[0].tool_calls[0].function.arguments: expected a string (JSON text), got an "
        "object");
  CHECK(input_error(R"({"messages": [], "tools": [{"type": "function"}]})") ==
        "tools[0].function: missing");
  CHECK(input_error(
            R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}]})") ==
        "messages[0].content: a list of parts is supported only for tool messages");
}

TEST_CASE("v4 rendering rejects what the encoder cannot render, with the field named", "[chat]") {
  auto v4 = std::move(make_chat_codec("v4")).value();
  auto medium = parse_ok(R"({"messages": [{"role": "user", "content": "hi"}],
      "thinking_mode": "chat", "reasoning_effort": "medium"})");
  auto r = v4->render(medium);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("reasoning_effort") != std::string::npos);

  auto null_user = parse_ok(R"({"messages": [{"role": "user", "content": null}]})");
  r = v4->render(null_user);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().rfind("messages[0].content", 0) == 0);

  // Arguments that are JSON but not an object have no parameters to write.
  auto list_args = parse_ok(R"({"messages": [{"role": "user", "content": "hi"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function",
       "function": {"name": "f", "arguments": "[1, 2]"}}]}]})");
  r = v4->render(list_args);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().rfind("messages[1].tool_calls[0].function.arguments", 0) == 0);
}

TEST_CASE("v3 rendering rejects content the template cannot concatenate", "[chat]") {
  auto v3 = std::move(make_chat_codec("v3")).value();
  auto missing = parse_ok(R"({"messages": [{"role": "user", "content": "hi"},
      {"role": "assistant", "tool_calls": []}]})");
  auto r = v3->render(missing);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().rfind("messages[1].content", 0) == 0);
  auto reminder = parse_ok(R"({"messages": [{"role": "latest_reminder", "content": "x"}]})");
  CHECK_FALSE(v3->render(reminder).is_ok());
}

TEST_CASE("v4 tool schemas and arguments are re-serialised in json.dumps style", "[chat]") {
  auto v4 = std::move(make_chat_codec("v4")).value();
  auto conv = parse_ok(R"({"messages": [{"role": "user", "content": "go"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function",
       "function": {"name": "f", "arguments": "{\"big\": 123456789012345678901234567890, \"f\": 1E400, \"s\": \"\\u00e9\\n\", \"a\": 1, \"a\": 2, \"n\": [-0, 0.5e1, NaN]}"}}]}],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": 1.0, "y": -0, "z": "\u00e9/\t"}}}]})");
  auto r = v4->render(conv);
  REQUIRE(r);
  CHECK(r->find(R"({"name": "f", "parameters": {"x": 1.0, "y": 0, "z": "é/\t"}})") !=
        std::string::npos);
  CHECK(
      r->find(R"(<｜DSML｜parameter name="big" string="false">123456789012345678901234567890<)") !=
      std::string::npos);
  CHECK(r->find(R"(<｜DSML｜parameter name="f" string="false">Infinity<)") != std::string::npos);
  CHECK(r->find("<｜DSML｜parameter name=\"s\" string=\"true\">é\n<") != std::string::npos);
  // A repeated key keeps its first position and takes the last value, as a Python dict does.
  CHECK(r->find(R"(<｜DSML｜parameter name="a" string="false">2<)") != std::string::npos);
  CHECK(r->find(R"(<｜DSML｜parameter name="n" string="false">[0, 5.0, NaN]<)") !=
        std::string::npos);
}
