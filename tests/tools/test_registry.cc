#include <mnemo/base/utf8.h>
#include <mnemo/tools/builtin_tools.h>
#include <mnemo/tools/json_schema.h>
#include <mnemo/tools/output_cap.h>
#include <mnemo/tools/registry.h>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <chrono>

#include "tools/tools_test_util.h"

using namespace mnemo;
using namespace mnemo::tools;

namespace {

constexpr const char* kSchema = R"({"type": "object", "properties": {
  "path": {"type": "string", "minLength": 1, "maxLength": 5},
  "count": {"type": "integer", "minimum": 1, "maximum": 10},
  "ratio": {"type": "number"},
  "mode": {"type": "string", "enum": ["fast", "slow"]},
  "flags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 2},
  "opts": {"type": "object", "properties": {"depth": {"type": "integer"}}, "required": ["depth"]}},
  "required": ["path"], "additionalProperties": false})";

std::string error_of(const JsonSchema& s, std::string_view args) {
  Status st = s.validate(args);
  return st ? "" : st.message();
}

class EchoTool final : public Tool {
 public:
  explicit EchoTool(std::string name, std::string schema = R"({"type": "object"})")
      : name_(std::move(name)), schema_(std::move(schema)) {}
  std::string_view name() const override { return name_; }
  std::string_view description() const override { return "Echo the arguments back."; }
  std::string_view parameters() const override { return schema_; }
  bool idempotent() const override { return true; }
  boost::asio::awaitable<ToolResult> run(ToolCall call, ToolContext& ctx) override {
    co_return ToolResult::success(call.arguments, ctx.output_cap);
  }

 private:
  std::string name_, schema_;
};

}  // namespace

TEST_CASE("schema validation accepts valid arguments and names the field of each error") {
  auto schema = JsonSchema::parse(kSchema);
  REQUIRE(schema);
  CHECK(error_of(*schema, R"({"path": "a", "count": 3, "ratio": 0.5, "mode": "fast",
                             "flags": [true], "opts": {"depth": 2}})") == "");
  CHECK(error_of(*schema, R"({})") == "arguments.path: required field is missing");
  CHECK(error_of(*schema, R"({"path": 7})") == "arguments.path: expected a string, got an integer");
  CHECK(error_of(*schema, R"({"path": ""})") == "arguments.path: must be at least 1 characters long");
  CHECK(error_of(*schema, R"({"path": "abcdef"})") ==
        "arguments.path: must be at most 5 characters long");
  CHECK(error_of(*schema, R"({"path": "a", "count": 2.5})") ==
        "arguments.count: expected an integer, got a number");
  CHECK(error_of(*schema, R"({"path": "a", "count": 11})") == "arguments.count: must be <= 10");
  CHECK(error_of(*schema, R"({"path": "a", "mode": "medium"})") ==
        R"(arguments.mode: must be one of ["fast", "slow"])");
  CHECK(error_of(*schema, R"({"path": "a", "flags": [true, 1]})") ==
        "arguments.flags[1]: expected a boolean, got an integer");
  CHECK(error_of(*schema, R"({"path": "a", "flags": [true, true, false]})") ==
        "arguments.flags: must have at most 2 items");
  CHECK(error_of(*schema, R"({"path": "a", "opts": {}})") ==
        "arguments.opts.depth: required field is missing");
  CHECK(error_of(*schema, R"({"path": "a", "colour": "red"})") == "arguments.colour: unknown field");
  CHECK(error_of(*schema, R"([1])") == "arguments: expected an object, got an array");
  CHECK(error_of(*schema, R"({"path": )").rfind("arguments is not valid JSON", 0) == 0);
}

TEST_CASE("a schema outside the supported subset is refused, naming where") {
  auto bad_type = JsonSchema::parse(R"({"type": "object", "properties": {"x": {"type": "date"}}})");
  REQUIRE_FALSE(bad_type);
  CHECK(bad_type.status().message().find("parameters.x") != std::string::npos);
  auto bad_keyword = JsonSchema::parse(R"({"type": "string", "patternProperties": {}})");
  REQUIRE_FALSE(bad_keyword);
  CHECK(bad_keyword.status().message().find("'patternProperties'") != std::string::npos);
  // RE2 has no lookaround or backreferences (it matches in linear time): such a pattern is named.
  auto lookahead = JsonSchema::parse(
      R"j({"type": "object", "properties": {"x": {"type": "string", "pattern": "^(?=a)"}}})j");
  REQUIRE_FALSE(lookahead);
  CHECK(lookahead.status().message().find("parameters.x.pattern: ") == 0);
}

TEST_CASE("pattern, exclusive bounds, multipleOf, uniqueItems and const are validated") {
  auto schema = JsonSchema::parse(R"({"type": "object", "properties": {
    "id": {"type": "string", "pattern": "^[a-z]+-[0-9]{2}$", "format": "slug"},
    "p": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "even": {"type": "integer", "multipleOf": 2},
    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
    "v": {"type": "integer", "const": 2}}})");
  REQUIRE(schema);
  CHECK(error_of(*schema, R"({"id": "ab-12", "p": 0.5, "even": 4, "tags": ["a", "b"], "v": 2})") ==
        "");
  CHECK(error_of(*schema, R"({"id": "ab-123"})") ==
        R"(arguments.id: must match the pattern "^[a-z]+-[0-9]{2}$")");
  CHECK(error_of(*schema, R"({"p": 0})") == "arguments.p: must be > 0");
  CHECK(error_of(*schema, R"({"p": 1})") == "arguments.p: must be < 1");
  CHECK(error_of(*schema, R"({"even": 3})") == "arguments.even: must be a multiple of 2");
  CHECK(error_of(*schema, R"({"tags": ["a", "b", "a"]})") ==
        "arguments.tags[2]: repeats item 0 (uniqueItems)");
  CHECK(error_of(*schema, R"({"v": 3})") == "arguments.v: must be 2");
  // A pattern that would take a backtracking engine exponential time is matched at once.
  auto evil = JsonSchema::parse(R"({"type": "string", "pattern": "^(a+)+$"})");
  REQUIRE(evil);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(error_of(*evil, "\"" + std::string(5000, 'a') + "b\"") ==
        R"(arguments: must match the pattern "^(a+)+$")");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("the registry refuses duplicate and invalid names and renders OpenAI tool declarations") {
  ToolRegistry reg;
  REQUIRE(add_builtin_tools(reg));
  Status dup = reg.add(std::make_shared<EchoTool>("shell"));
  REQUIRE_FALSE(dup);
  CHECK(dup.message().find("already registered") != std::string::npos);
  CHECK_FALSE(reg.add(std::make_shared<EchoTool>("bad name")));
  CHECK_FALSE(reg.add(std::make_shared<EchoTool>("echo", R"({"type": "object", "oneOf": []})")));
  CHECK(reg.names() == std::vector<std::string>{"shell", "read_file", "write_file", "list_dir",
                                                "http_get", "search_history"});
  CHECK(reg.find("read_file")->idempotent());
  CHECK_FALSE(reg.find("write_file")->idempotent());
  CHECK(reg.find("nope") == nullptr);

  boost::json::value tools = boost::json::parse(reg.tools_json());
  REQUIRE(tools.as_array().size() == 6);
  const auto& first = tools.as_array()[0].as_object();
  CHECK(first.at("type").as_string() == "function");
  CHECK(first.at("function").at("name").as_string() == "shell");
  CHECK(first.at("function").at("parameters").at("required").as_array()[0].as_string() == "command");
  // Python json.dumps separators, which is how the chat codec renders tool schemas.
  std::vector<std::string> fns = reg.function_schemas();
  CHECK(fns[0].rfind(R"({"name": "shell", "description": "Run a bash command)", 0) == 0);
  CHECK(reg.tools_json().find(fns[1]) != std::string::npos);
}

TEST_CASE("a call with bad arguments or an unknown tool becomes an error result naming the field") {
  ToolRegistry reg;
  REQUIRE(add_builtin_tools(reg));
  test::TempTree ws("reg");
  ToolContext ctx = test::context_for(ws.path);
  ToolResult r = test::run_call(reg, ctx, "read_file", R"({"path": 3})");
  CHECK_FALSE(r.ok);
  CHECK(r.content == "read_file: arguments.path: expected a string, got an integer");
  r = test::run_call(reg, ctx, "write_file", R"({"path": "a"})");
  CHECK_FALSE(r.ok);
  CHECK(r.content == "write_file: arguments.content: required field is missing");
  r = test::run_call(reg, ctx, "rm_rf", R"({})");
  CHECK_FALSE(r.ok);
  CHECK(r.content.rfind("unknown tool 'rm_rf' (available: shell, read_file", 0) == 0);
}

TEST_CASE("output over the cap keeps head and tail around a marker, the whole kept separately") {
  std::string big;
  for (int i = 0; i < 2000; ++i) big += "line " + std::to_string(i) + "\n";
  ToolResult r = ToolResult::success(big, 1000);
  CHECK(r.ok);
  CHECK(r.truncated);
  CHECK(r.full_output == big);
  CHECK(r.content.size() < 1100);
  CHECK(r.content.rfind("line 0\n", 0) == 0);
  CHECK(r.content.find("line 1999\n") != std::string::npos);
  CappedText capped = cap_text(big, 1000);
  CHECK(capped.cut_bytes == big.size() - 1000);
  CHECK(r.content.find(truncation_marker(capped.cut_bytes)) != std::string::npos);
  CHECK(truncation_marker(5) == "[... 5 bytes truncated; full output stored, search_history finds it ...]");

  ToolResult small = ToolResult::success("short", 1000);
  CHECK_FALSE(small.truncated);
  CHECK(small.content == "short");
  CHECK(small.full_output.empty());
}

TEST_CASE("capping never splits a UTF-8 character") {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "\xC3\xA9";  // é, two bytes each
  CappedText capped = cap_text(text, 101);
  CHECK(utf8::validate(capped.text).is_ok());
  CHECK(capped.cut_bytes > 0);
}
