#include <mnemo/base/utf8.h>
#include <mnemo/inference/chat.h>
#include <mnemo/inference/chat_json.h>
#include <simdjson.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <random>

#include "support/test_paths.h"

using mnemo::inference::AssistantMessage;
using mnemo::inference::ChatEvent;
using mnemo::inference::ChatEventKind;
using mnemo::inference::make_v4_output_parser;
using mnemo::inference::ThinkingMode;
using mnemo::inference::ToolCall;

namespace {

struct ParseRecord {
  std::string id;
  ThinkingMode mode = ThinkingMode::kChat;
  std::string completion;
  bool is_error = false;
  AssistantMessage parsed;
};

std::string str(simdjson::dom::element e, const char* key) {
  std::string_view s;
  REQUIRE(!e[key].get(s));
  return std::string(s);
}

std::vector<ParseRecord> load_parse_records() {
  std::vector<ParseRecord> records;
  std::ifstream in(mnemo::test::data_path("chat/v4_parse.jsonl"));
  REQUIRE(in);
  simdjson::dom::parser parser;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    simdjson::dom::element doc;
    REQUIRE(!parser.parse(line).get(doc));
    ParseRecord r;
    r.id = str(doc, "id");
    r.mode =
        str(doc, "thinking_mode") == "thinking" ? ThinkingMode::kThinking : ThinkingMode::kChat;
    r.completion = str(doc, "completion");
    simdjson::dom::element parsed;
    if (doc["parsed"].get(parsed)) {
      r.is_error = true;
    } else {
      REQUIRE(str(parsed, "role") == "assistant");
      r.parsed.content = str(parsed, "content");
      r.parsed.reasoning_content = str(parsed, "reasoning_content");
      simdjson::dom::array calls;
      REQUIRE(!parsed["tool_calls"].get(calls));
      for (simdjson::dom::element c : calls) {
        REQUIRE(str(c, "type") == "function");
        ToolCall call;
        call.name = str(c["function"].value(), "name");
        call.arguments = str(c["function"].value(), "arguments");
        r.parsed.tool_calls.push_back(std::move(call));
      }
    }
    records.push_back(std::move(r));
  }
  return records;
}

// Splits text into pieces of `n` code points (n == 0: one piece).
std::vector<std::string> split_code_points(const std::string& text, size_t n) {
  if (n == 0) return {text};
  std::vector<std::string> pieces;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    for (size_t k = 0; k < n && i < text.size(); ++k) mnemo::utf8::next(text, i);
    pieces.push_back(text.substr(start, i - start));
  }
  return pieces;
}

std::vector<std::string> split_bytes(const std::string& text, size_t n) {
  std::vector<std::string> pieces;
  for (size_t i = 0; i < text.size(); i += n) pieces.push_back(text.substr(i, n));
  return pieces;
}

struct StreamResult {
  bool ok = false;
  std::string error;
  std::string raw_at_error;
  AssistantMessage message;
  std::vector<ChatEvent> events;
};

// Feeds the pieces, checks the event stream's invariants, and returns the outcome.
StreamResult stream(const std::vector<std::string>& pieces, ThinkingMode mode) {
  auto parser = make_v4_output_parser(mode);
  StreamResult r;
  std::string all;
  for (const auto& p : pieces) {
    parser->push(p, r.events);
    all += p;
  }
  parser->finish(r.events);
  CHECK(parser->raw_text() == all);
  REQUIRE(!r.events.empty());
  size_t terminal = 0;
  for (const auto& e : r.events) {
    if (e.kind == ChatEventKind::kEndOfTurn || e.kind == ChatEventKind::kError) ++terminal;
  }
  CHECK(terminal == 1);
  const ChatEvent& last = r.events.back();
  CHECK((last.kind == ChatEventKind::kEndOfTurn || last.kind == ChatEventKind::kError));
  r.ok = last.kind == ChatEventKind::kEndOfTurn;
  CHECK(parser->failed() == !r.ok);
  if (!r.ok) {
    r.error = last.text;
    r.raw_at_error = last.raw;
    CHECK(all.rfind(last.raw, 0) == 0);
    return r;
  }
  r.message = parser->message();
  // The deltas add up to the final message.
  std::string content, reasoning;
  std::map<size_t, std::string> args;
  std::vector<ToolCall> ended;
  for (const auto& e : r.events) {
    switch (e.kind) {
      case ChatEventKind::kTextDelta: content += e.text; break;
      case ChatEventKind::kReasoningDelta: reasoning += e.text; break;
      case ChatEventKind::kToolCallBegin: CHECK(e.tool_index == ended.size()); break;
      case ChatEventKind::kToolCallArgsDelta: args[e.tool_index] += e.text; break;
      case ChatEventKind::kToolCallEnd: {
        CHECK(e.tool_index == ended.size());
        CHECK(args[e.tool_index] == e.arguments);
        ToolCall c;
        c.name = e.name;
        c.arguments = e.arguments;
        ended.push_back(c);
        break;
      }
      default: break;
    }
  }
  CHECK(content == r.message.content);
  CHECK(reasoning == r.message.reasoning_content);
  REQUIRE(ended.size() == r.message.tool_calls.size());
  for (size_t i = 0; i < ended.size(); ++i) {
    CHECK(ended[i].name == r.message.tool_calls[i].name);
    CHECK(ended[i].arguments == r.message.tool_calls[i].arguments);
  }
  return r;
}

void check_same_message(const AssistantMessage& got, const AssistantMessage& want) {
  CHECK(got.content == want.content);
  CHECK(got.reasoning_content == want.reasoning_content);
  REQUIRE(got.tool_calls.size() == want.tool_calls.size());
  for (size_t i = 0; i < got.tool_calls.size(); ++i) {
    CHECK(got.tool_calls[i].name == want.tool_calls[i].name);
    CHECK(got.tool_calls[i].arguments == want.tool_calls[i].arguments);
    CHECK(got.tool_calls[i].type == std::optional<std::string>("function"));
    CHECK(got.tool_calls[i].id.empty());
  }
}

// Where this parser is deliberately stricter than the official one.
bool stricter_case(const std::string& id) {
  return id == "v4p-s-truncated_after_param_accepted" || id == "v4p-s-string_false_not_json";
}

}  // namespace

TEST_CASE("v4 parser gives the golden message for every completion, however it is split",
          "[chat]") {
  auto records = load_parse_records();
  REQUIRE(records.size() == 22);
  size_t error_records = 0;
  for (const ParseRecord& r : records) {
    INFO(r.id);
    const bool expect_error = r.is_error || stricter_case(r.id);
    if (r.is_error) ++error_records;
    std::vector<std::vector<std::string>> splits = {
        split_code_points(r.completion, 0), split_code_points(r.completion, 1),
        split_code_points(r.completion, 3), split_bytes(r.completion, 1),
        split_bytes(r.completion, 7)};
    std::vector<StreamResult> results;
    for (const auto& pieces : splits) {
      INFO("pieces: " << pieces.size());
      results.push_back(stream(pieces, r.mode));
      StreamResult& got = results.back();
      CHECK(got.ok == !expect_error);
      if (got.ok && !expect_error) check_same_message(got.message, r.parsed);
      if (!got.ok) CHECK(!got.error.empty());
    }
    for (size_t k = 1; k < results.size(); ++k) {
      CHECK(results[k].ok == results[0].ok);
      CHECK(results[k].error == results[0].error);
    }
    auto whole = mnemo::inference::parse_v4_completion(r.completion, r.mode);
    CHECK(whole.is_ok() == !expect_error);
  }
  CHECK(error_records == 8);
}

TEST_CASE("a tool block cut off after a parameter is an error with the raw text, not a call",
          "[chat]") {
  const std::string text =
      "Look it up.</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"web_search\">\n"
      "<｜DSML｜parameter name=\"query\" string=\"true\">rust borrow checker</｜DSML｜parameter>\n";
  auto r = stream(split_code_points(text, 1), ThinkingMode::kThinking);
  REQUIRE_FALSE(r.ok);
  CHECK(r.raw_at_error == text);
  for (const auto& e : r.events) CHECK(e.kind != ChatEventKind::kToolCallEnd);
}

TEST_CASE("a string=\"false\" value that is not JSON is an error with the raw text", "[chat]") {
  const std::string text =
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"calculator\">\n<｜DSML｜parameter "
      "name=\"expression\" string=\"false\">abc def</｜DSML｜parameter>\n</｜DSML｜invoke>\n"
      "</｜DSML｜tool_calls><｜end▁of▁sentence｜>";
  auto r = stream({text}, ThinkingMode::kChat);
  REQUIRE_FALSE(r.ok);
  CHECK(r.error.find("expression") != std::string::npos);
  CHECK(text.rfind(r.raw_at_error, 0) == 0);
  for (const auto& e : r.events) CHECK(e.kind != ChatEventKind::kToolCallEnd);
  // NaN is Python JSON but not JSON: a tool could not read it.
  std::string nan = text;
  nan.replace(nan.find("abc def"), 7, "NaN");
  CHECK_FALSE(stream({nan}, ThinkingMode::kChat).ok);
}

TEST_CASE("v4 parser streams content before it knows the turn's end and holds back only markers",
          "[chat]") {
  auto parser = make_v4_output_parser(ThinkingMode::kChat);
  std::vector<ChatEvent> events;
  parser->push("Hello wor", events);
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == ChatEventKind::kTextDelta);
  CHECK(events[0].text == "Hello wor");
  events.clear();
  // "\n\n<｜DS" could begin a tool block: nothing comes out yet.
  parser->push("ld\n\n<｜DS", events);
  REQUIRE(events.size() == 1);
  CHECK(events[0].text == "ld");
  events.clear();
  parser->push(
      "ML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"x\" "
      "string=\"true\">a\"b",
      events);
  REQUIRE(events.size() >= 2);
  CHECK(events[0].kind == ChatEventKind::kToolCallBegin);
  CHECK(events[0].name == "f");
  std::string args;
  for (const auto& e : events) {
    if (e.kind == ChatEventKind::kToolCallArgsDelta) args += e.text;
  }
  CHECK(args == "{\"x\": \"a\\\"b");
  events.clear();
  parser->push(
      "</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>",
      events);
  parser->finish(events);
  REQUIRE(events.size() == 4);
  CHECK(events[0].text + events[1].text == "\"}");
  CHECK(events[2].kind == ChatEventKind::kToolCallEnd);
  CHECK(events[2].arguments == "{\"x\": \"a\\\"b\"}");
  CHECK(events[3].kind == ChatEventKind::kEndOfTurn);
  CHECK(parser->message().content == "Hello world");
}

TEST_CASE("v4 parser follows the official parser on whitespace and blank lines in invokes",
          "[chat]") {
  const std::string block =
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke \t name=\"f\">\n\n</｜DSML｜invoke>\n"
      "<｜DSML｜invoke name=\"g\">\n<｜DSML｜parameter name=\"v\" string=\"true\">x<\n"
      "/｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
  auto r = stream(split_code_points(block, 1), ThinkingMode::kChat);
  REQUIRE(r.ok);
  REQUIRE(r.message.tool_calls.size() == 2);
  CHECK(r.message.tool_calls[0].arguments == "{}");
  CHECK(r.message.tool_calls[1].arguments == "{\"v\": \"x\"}");
  // An empty block is no call at all.
  auto empty = mnemo::inference::parse_v4_completion(
      "Hi\n\n<｜DSML｜tool_calls>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>",
      ThinkingMode::kChat);
  REQUIRE(empty);
  CHECK(empty->content == "Hi");
  CHECK(empty->tool_calls.empty());
}

TEST_CASE("v4 parser rejects text after the end of the turn and markers in the reasoning",
          "[chat]") {
  using mnemo::inference::parse_v4_completion;
  CHECK_FALSE(parse_v4_completion("Hi<｜end▁of▁sentence｜>more", ThinkingMode::kChat).is_ok());
  CHECK_FALSE(parse_v4_completion("a<｜end▁of▁sentence｜></think>b<｜end▁of▁sentence｜>",
                                  ThinkingMode::kThinking)
                  .is_ok());
  CHECK_FALSE(
      parse_v4_completion("a</think>b</think><｜end▁of▁sentence｜>", ThinkingMode::kThinking)
          .is_ok());
  CHECK_FALSE(parse_v4_completion("r\n\n<｜DSML｜tool_calls>\n</｜DSML｜tool_calls></think>",
                                  ThinkingMode::kThinking)
                  .is_ok());
  auto ok = parse_v4_completion("a < b </thin k><｜end▁of▁sentence｜>", ThinkingMode::kChat);
  REQUIRE(ok);
  CHECK(ok->content == "a < b </thin k>");
}

TEST_CASE("v4 parser never crashes and gives the same outcome however garbled text is split",
          "[chat]") {
  auto records = load_parse_records();
  std::mt19937 rng(12345);
  const std::vector<std::string> fragments = {"<｜DSML｜",
                                              "｜DSML｜",
                                              "</think>",
                                              "<think>",
                                              "\n\n",
                                              "<｜end▁of▁sentence｜>",
                                              ">\n",
                                              "\"",
                                              "name=\"",
                                              "string=\"true\">",
                                              "string=\"false\">",
                                              "</｜DSML｜parameter>",
                                              "<｜DSML｜invoke",
                                              "</｜DSML｜invoke>",
                                              "\xff",
                                              "\xe4\xb8",
                                              "{",
                                              "}",
                                              "<"};
  for (int round = 0; round < 400; ++round) {
    const ParseRecord& base = records[rng() % records.size()];
    std::string text = base.completion;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      size_t at = text.empty() ? 0 : rng() % (text.size() + 1);
      switch (rng() % 3) {
        case 0: text.insert(at, fragments[rng() % fragments.size()]); break;
        case 1: text.erase(at, rng() % 8); break;
        default: text = text.substr(0, at); break;
      }
    }
    INFO("round " << round << ": " << text);
    auto mode = rng() % 2 ? ThinkingMode::kThinking : ThinkingMode::kChat;
    StreamResult whole = stream({text}, mode);
    StreamResult bytes = stream(split_bytes(text, 1), mode);
    StreamResult chunks = stream(split_bytes(text, 1 + rng() % 13), mode);
    CHECK(bytes.ok == whole.ok);
    CHECK(chunks.ok == whole.ok);
    CHECK(bytes.error == whole.error);
    if (whole.ok && bytes.ok && chunks.ok) {
      check_same_message(bytes.message, whole.message);
      check_same_message(chunks.message, whole.message);
    }
  }
}

TEST_CASE("every prefix of a golden completion parses the same whole and byte by byte", "[chat]") {
  for (const ParseRecord& r : load_parse_records()) {
    for (size_t n = 0; n <= r.completion.size(); ++n) {
      std::string prefix = r.completion.substr(0, n);
      auto whole = mnemo::inference::parse_v4_completion(prefix, r.mode);
      auto parser = make_v4_output_parser(r.mode);
      std::vector<ChatEvent> events;
      for (char c : prefix) parser->push(std::string_view(&c, 1), events);
      parser->finish(events);
      INFO(r.id << " prefix " << n);
      CHECK(whole.is_ok() == !parser->failed());
    }
  }
}
