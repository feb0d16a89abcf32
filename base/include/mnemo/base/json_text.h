#pragma once
// Writing JSON text: the escaping of Python's json.dumps(ensure_ascii=False), which is valid JSON and
// what the DeepSeek encoders emit, and Python's float repr.
#include <string>
#include <string_view>

namespace mnemo::json {

// Appends s as a quoted JSON string: escapes `"`, `\`, \n \r \t \b \f and other control characters
// below U+0020 as \u00XX; everything else (non-ASCII, `/`, DEL) stays raw.
void append_string(std::string& out, std::string_view s);

inline std::string quote(std::string_view s) {
  std::string out;
  append_string(out, s);
  return out;
}

// Python's repr(float): shortest round-trip digits, ".0" on integral values, exponent form
// (e-07, e+16) below 1e-4 and from 1e16; inf/nan as Python's json.dumps writes them.
std::string python_float_repr(double v);

}  // namespace mnemo::json
