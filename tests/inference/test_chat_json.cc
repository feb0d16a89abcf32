#include <mnemo/inference/chat_json.h>

#include <catch2/catch.hpp>

using mnemo::inference::dump_py_json;
using mnemo::inference::parse_py_json;
using mnemo::inference::PyJsonParseOptions;

namespace {

std::string reformat(std::string_view text) {
  auto v = parse_py_json(text);
  INFO(text);
  REQUIRE(v);
  return dump_py_json(*v);
}

}  // namespace

TEST_CASE("py json re-serialises values as Python's json.dumps does", "[chat]") {
  CHECK(reformat(R"({"b":1,"a":[true,false,null],"c":{}})") ==
        R"({"b": 1, "a": [true, false, null], "c": {}})");
  CHECK(reformat("[1.0, 1e5, 0.1, 2.50, -0.0, 1e-7, 12345678901234567890, 3.14159265358979, -5]") ==
        "[1.0, 100000.0, 0.1, 2.5, -0.0, 1e-07, 12345678901234567890, 3.14159265358979, -5]");
  CHECK(reformat("[123456789012345678901234567890, -0, 1.5E+10, 0.000001, 1E400, -1e400]") ==
        "[123456789012345678901234567890, 0, 15000000000.0, 1e-06, Infinity, -Infinity]");
  CHECK(reformat(R"(" \u00e9\/\n\u0001\ud83c\udf19")") == "\" é/\\n\\u0001🌙\"");
  CHECK(reformat("  [NaN, Infinity, -Infinity]\r\n") == "[NaN, Infinity, -Infinity]");
  CHECK(reformat(R"({"a": 1, "b": 2, "a": 3})") == R"({"a": 3, "b": 2})");
  CHECK(reformat("[[], [[]], {\"k\": [{}]}]") == "[[], [[]], {\"k\": [{}]}]");
}

TEST_CASE("py json rejects what json.loads rejects, naming the byte offset", "[chat]") {
  for (const char* bad : {"", "ls -la /tmp", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", ".5",
                          "\"tab\there\"", "\"\\x\"", "\"\\u12\"", "[1] 2", "{'a': 1}", "tru"}) {
    INFO(bad);
    CHECK_FALSE(parse_py_json(bad).is_ok());
  }
  auto e = parse_py_json("[1, 2,, 3]");
  REQUIRE_FALSE(e.is_ok());
  CHECK(e.status().message().rfind("invalid JSON at byte 6", 0) == 0);
}

TEST_CASE("py json strict mode refuses NaN and Infinity", "[chat]") {
  PyJsonParseOptions strict;
  strict.allow_nan = false;
  CHECK_FALSE(parse_py_json("NaN", strict).is_ok());
  CHECK_FALSE(parse_py_json("[-Infinity]", strict).is_ok());
  CHECK(parse_py_json("[1e400]", strict).is_ok());
}

TEST_CASE("py json refuses nesting deeper than the limit instead of overflowing the stack",
          "[chat]") {
  std::string deep(100000, '[');
  CHECK_FALSE(parse_py_json(deep).is_ok());
  std::string ok = std::string(100, '[') + std::string(100, ']');
  CHECK(parse_py_json(ok).is_ok());
}
