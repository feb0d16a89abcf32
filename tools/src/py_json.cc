#include "py_json.h"

#include <mnemo/base/json_text.h>

#include <boost/json/parse.hpp>

namespace mnemo::tools::internal {

namespace json = boost::json;

void append_py_json(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      break;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      break;
    case json::kind::int64:
      out += std::to_string(v.get_int64());
      break;
    case json::kind::uint64:
      out += std::to_string(v.get_uint64());
      break;
    case json::kind::double_:
      out += mnemo::json::python_float_repr(v.get_double());
      break;
    case json::kind::string:
      mnemo::json::append_string(out, v.get_string());
      break;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const json::value& e : v.get_array()) {
        if (!first) out += ", ";
        first = false;
        append_py_json(out, e);
      }
      out += ']';
      break;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ", ";
        first = false;
        mnemo::json::append_string(out, kv.key());
        out += ": ";
        append_py_json(out, kv.value());
      }
      out += '}';
      break;
    }
  }
}

std::string py_json(const json::value& v) {
  std::string out;
  append_py_json(out, v);
  return out;
}

Result<json::value> parse_json(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return Status::invalid_argument(std::string(what) + " is not valid JSON: " + ec.message());
  return v;
}

std::string string_field(const json::object& o, std::string_view key, std::string_view fallback) {
  auto it = o.find(json::string_view(key.data(), key.size()));
  if (it == o.end() || !it->value().is_string()) return std::string(fallback);
  return std::string(it->value().get_string());
}

int64_t int_field(const json::object& o, std::string_view key, int64_t fallback) {
  auto it = o.find(json::string_view(key.data(), key.size()));
  if (it == o.end()) return fallback;
  if (it->value().is_int64()) return it->value().get_int64();
  if (it->value().is_uint64()) return static_cast<int64_t>(it->value().get_uint64());
  return fallback;
}

bool bool_field(const json::object& o, std::string_view key, bool fallback) {
  auto it = o.find(json::string_view(key.data(), key.size()));
  if (it == o.end() || !it->value().is_bool()) return fallback;
  return it->value().get_bool();
}

}  // namespace mnemo::tools::internal
