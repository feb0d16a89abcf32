#pragma once
// Boost.JSON values written as Python's json.dumps(ensure_ascii=False) writes them (", " and ": "
// separators), the form the chat codecs render tool declarations in.
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include <mnemo/base/status.h>

namespace mnemo::tools::internal {

void append_py_json(std::string& out, const boost::json::value& v);
std::string py_json(const boost::json::value& v);

// Parses JSON text; the error says where it stopped.
Result<boost::json::value> parse_json(std::string_view text, std::string_view what);

// A string field of an object, or `fallback` when absent (validation already checked the type).
std::string string_field(const boost::json::object& o, std::string_view key,
                         std::string_view fallback = "");
int64_t int_field(const boost::json::object& o, std::string_view key, int64_t fallback);
bool bool_field(const boost::json::object& o, std::string_view key, bool fallback);

}  // namespace mnemo::tools::internal
