#include <mnemo/base/json_text.h>

#include <catch2/catch.hpp>
#include <limits>

using mnemo::json::python_float_repr;
using mnemo::json::quote;

TEST_CASE("python_float_repr prints floats as Python's repr does", "[json]") {
  struct Case {
    double value;
    const char* repr;
  };
  const Case cases[] = {
      {1e5, "100000.0"},
      {1e-7, "1e-07"},
      {2.50, "2.5"},
      {0.000001, "1e-06"},
      {1.5E+10, "15000000000.0"},
      {-0.0, "-0.0"},
      {0.0, "0.0"},
      {1.0, "1.0"},
      {0.1, "0.1"},
      {0.1 + 0.2, "0.30000000000000004"},
      {3.14159265358979, "3.14159265358979"},
      {0.0001, "0.0001"},
      {-1.5e-5, "-1.5e-05"},
      {1e15, "1000000000000000.0"},
      {1e16, "1e+16"},
      {1e22, "1e+22"},
      {12345678901234567.0, "1.2345678901234568e+16"},
      {9007199254740993.0, "9007199254740992.0"},
      {123456789.123, "123456789.123"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},
  };
  for (const Case& c : cases) {
    INFO(c.repr);
    CHECK(python_float_repr(c.value) == c.repr);
  }
}

TEST_CASE("python_float_repr writes non-finite floats as json.dumps does", "[json]") {
  CHECK(python_float_repr(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(python_float_repr(std::numeric_limits<double>::infinity()) == "Infinity");
  CHECK(python_float_repr(-std::numeric_limits<double>::infinity()) == "-Infinity");
}

TEST_CASE("append_string escapes like json.dumps with ensure_ascii off", "[json]") {
  CHECK(quote("plain") == "\"plain\"");
  CHECK(quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(quote("\n\r\t\b\f") == "\"\\n\\r\\t\\b\\f\"");
  CHECK(quote(std::string("\x01\x1f", 2)) == "\"\\u0001\\u001f\"");
  CHECK(quote(std::string("nul\0", 4)) == "\"nul\\u0000\"");
  // Non-ASCII, '/' and DEL stay raw.
  CHECK(quote("城市 🌙 / \x7f") == "\"城市 🌙 / \x7f\"");
}
