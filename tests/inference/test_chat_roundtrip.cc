#include <mnemo/inference/chat.h>
#include <mnemo/inference/chat_json.h>
#include <mnemo/inference/special_tokens.h>

#include <catch2/catch.hpp>

using mnemo::inference::ChatMessage;
using mnemo::inference::ChatRole;
using mnemo::inference::ContentKind;
using mnemo::inference::Conversation;
using mnemo::inference::ThinkingMode;
using mnemo::inference::ToolCall;

namespace {

ToolCall call(std::string name, std::string arguments) {
  ToolCall c;
  c.id = "id_" + name;
  c.type = "function";
  c.name = std::move(name);
  c.arguments = std::move(arguments);
  return c;
}

std::string normalised(const std::string& json) {
  auto v = mnemo::inference::parse_py_json(json);
  INFO(json);
  REQUIRE(v);
  return mnemo::inference::dump_py_json(*v);
}

// Renders [user, assistant(calls)] and parses the assistant turn back out of the prompt.
void check_round_trip(ThinkingMode mode, const std::string& content, const std::string& reasoning,
                      const std::vector<ToolCall>& calls) {
  Conversation conv;
  conv.thinking_mode = mode;
  ChatMessage user;
  user.role = ChatRole::kUser;
  user.content_kind = ContentKind::kText;
  user.content = "go";
  ChatMessage assistant;
  assistant.role = ChatRole::kAssistant;
  assistant.content_kind = ContentKind::kText;
  assistant.content = content;
  assistant.reasoning_content = reasoning;
  assistant.tool_calls = calls;
  conv.messages = {user, assistant};
  auto prompt = mnemo::inference::render_v4_prompt(conv);
  REQUIRE(prompt);
  namespace tokens = mnemo::inference::tokens;
  std::string head =
      std::string(tokens::kBos) + std::string(tokens::kUser) + "go" +
      std::string(tokens::kAssistant) +
      std::string(mode == ThinkingMode::kThinking ? tokens::kThinkBegin : tokens::kThinkEnd);
  REQUIRE(prompt->rfind(head, 0) == 0);
  std::string completion = prompt->substr(head.size());
  auto parsed = mnemo::inference::parse_v4_completion(completion, mode);
  INFO(completion);
  REQUIRE(parsed);
  CHECK(parsed->content == content);
  CHECK(parsed->reasoning_content == (mode == ThinkingMode::kThinking ? reasoning : ""));
  REQUIRE(parsed->tool_calls.size() == calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    CHECK(parsed->tool_calls[i].name == calls[i].name);
    CHECK(parsed->tool_calls[i].arguments == normalised(calls[i].arguments));
  }
}

}  // namespace

TEST_CASE("rendered v4 tool calls parse back to the same calls", "[chat]") {
  std::vector<ToolCall> calls = {
      call("get_weather", R"({"location": "Berlin", "unit": "celsius"})"),
      call("write_file",
           "{\"path\": \"a.md\", \"content\": \"line1\\n<b>x</b>\\n```\\n\\\"q\\\" \\\\ "
           "end\\t\", \"append\": false}"),
      call("get_time", "{}"),
      call("run_sql", R"({"params": [1.0, 1e5, 0.1, -0.0, 1e-7, 12345678901234567890, -5],
                          "opts": {"nested": {"deep": [null, true, {}]}, "empty": []}})"),
      call("翻译", R"({"文本": "床前明月光 🌙", "目标": "en"})"),
  };
  check_round_trip(ThinkingMode::kChat, "Let me check.", "", calls);
  check_round_trip(ThinkingMode::kThinking, "", "Need tools.", calls);
  check_round_trip(ThinkingMode::kChat, "", "", {calls[2]});
  check_round_trip(ThinkingMode::kThinking, "Plain answer.", "Easy.", {});
}
