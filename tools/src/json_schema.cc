#include <mnemo/tools/json_schema.h>

#include <re2/re2.h>

#include <array>
#include <boost/json/value.hpp>
#include <cmath>
#include <map>
#include <memory>

#include "py_json.h"

namespace mnemo::tools {

namespace json = boost::json;

struct JsonSchema::Impl {
  json::value schema;
  std::map<std::string, std::unique_ptr<re2::RE2>, std::less<>> patterns;  // compiled once
};

namespace {

constexpr std::array<std::string_view, 6> kTypes = {"object", "string",  "integer",
                                                    "number", "boolean", "array"};
constexpr std::array<std::string_view, 22> kKeywords = {
    "type",       "description",      "title",           "default",    "properties",
    "required",   "items",            "enum",            "minLength",  "maxLength",
    "minimum",    "maximum",          "minItems",        "maxItems",   "additionalProperties",
    "pattern",    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems",
    "const",      "format"};
// A pattern is a JSON Schema (ECMA 262) regular expression, matched anywhere in the string, by RE2:
// no backreferences or lookaround, linear time.
constexpr size_t kMaxPatternBytes = 1024;

template <size_t N>
bool contains(const std::array<std::string_view, N>& list, std::string_view s) {
  for (std::string_view e : list)
    if (e == s) return true;
  return false;
}

std::string_view sv(json::string_view s) { return {s.data(), s.size()}; }

const json::value* get(const json::object& o, std::string_view key) {
  return o.if_contains(json::string_view(key.data(), key.size()));
}

Status check_schema(const json::value& s, const std::string& where, JsonSchema::Impl& impl) {
  if (!s.is_object()) return Status::invalid_argument(where + ": a schema must be an object");
  const json::object& o = s.get_object();
  for (const auto& kv : o) {
    if (!contains(kKeywords, sv(kv.key())))
      return Status::invalid_argument(where + ": unsupported schema keyword '" +
                                      std::string(sv(kv.key())) + "'");
  }
  const json::value* type = get(o, "type");
  if (!type || !type->is_string() || !contains(kTypes, sv(type->get_string())))
    return Status::invalid_argument(where + ": 'type' must be one of object, string, integer, "
                                            "number, boolean, array");
  if (const json::value* props = get(o, "properties")) {
    if (!props->is_object()) return Status::invalid_argument(where + ".properties: not an object");
    for (const auto& kv : props->get_object())
      MNEMO_RETURN_IF_ERROR(
          check_schema(kv.value(), where + "." + std::string(sv(kv.key())), impl));
  }
  if (const json::value* req = get(o, "required")) {
    if (!req->is_array()) return Status::invalid_argument(where + ".required: not an array");
    for (const json::value& r : req->get_array())
      if (!r.is_string()) return Status::invalid_argument(where + ".required: names must be strings");
  }
  if (const json::value* items = get(o, "items"))
    MNEMO_RETURN_IF_ERROR(check_schema(*items, where + "[]", impl));
  if (const json::value* e = get(o, "enum"); e && !e->is_array())
    return Status::invalid_argument(where + ".enum: not an array");
  for (std::string_view k : {"minLength", "maxLength", "minItems", "maxItems"}) {
    const json::value* v = get(o, k);
    if (v && !v->is_int64() && !v->is_uint64())
      return Status::invalid_argument(where + "." + std::string(k) + ": not an integer");
  }
  for (std::string_view k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
    const json::value* v = get(o, k);
    if (v && !v->is_number())
      return Status::invalid_argument(where + "." + std::string(k) + ": not a number");
  }
  if (const json::value* m = get(o, "multipleOf");
      m && (!m->is_number() || !(m->to_number<double>() > 0)))
    return Status::invalid_argument(where + ".multipleOf: not a number above 0");
  if (const json::value* u = get(o, "uniqueItems"); u && !u->is_bool())
    return Status::invalid_argument(where + ".uniqueItems: not true or false");
  if (const json::value* f = get(o, "format"); f && !f->is_string())
    return Status::invalid_argument(where + ".format: not a string");
  if (const json::value* p = get(o, "pattern")) {
    if (!p->is_string()) return Status::invalid_argument(where + ".pattern: not a string");
    const std::string text(sv(p->get_string()));
    if (text.size() > kMaxPatternBytes)
      return Status::invalid_argument(where + ".pattern: longer than " +
                                      std::to_string(kMaxPatternBytes) + " bytes");
    if (!impl.patterns.count(text)) {
      re2::RE2::Options options;
      options.set_log_errors(false);
      options.set_max_mem(1 << 20);
      auto re = std::make_unique<re2::RE2>(text, options);
      if (!re->ok())
        return Status::invalid_argument(where + ".pattern: " + re->error() +
                                        " (RE2 syntax: no backreferences or lookaround)");
      impl.patterns.emplace(text, std::move(re));
    }
  }
  if (const json::value* ap = get(o, "additionalProperties"); ap && !ap->is_bool())
    return Status::invalid_argument(where + ".additionalProperties: only true or false");
  return Status::ok();
}

std::string kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64: return "an integer";
    case json::kind::double_: return "a number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "a value";
}

bool is_integral(const json::value& v) {
  if (v.is_int64() || v.is_uint64()) return true;
  return v.is_double() && std::isfinite(v.get_double()) && std::floor(v.get_double()) == v.get_double();
}

uint64_t count(const json::value& v) { return v.is_int64() ? v.get_int64() : v.get_uint64(); }

// Code points, which is what a schema's string lengths count.
size_t utf8_length(json::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

Status fail(const std::string& path, const std::string& what) {
  return Status::invalid_argument(path + ": " + what);
}

Status validate_value(const JsonSchema::Impl& impl, const json::object& s, const json::value& v,
                      const std::string& path) {
  std::string_view type = sv(get(s, "type")->get_string());
  const std::string got = kind_name(v);
  if (type == "object") {
    if (!v.is_object()) return fail(path, "expected an object, got " + got);
    const json::object& o = v.get_object();
    const json::value* props = get(s, "properties");
    if (const json::value* req = get(s, "required")) {
      for (const json::value& r : req->get_array()) {
        if (!o.contains(r.get_string()))
          return fail(path + "." + std::string(sv(r.get_string())), "required field is missing");
      }
    }
    const json::value* ap = get(s, "additionalProperties");
    const bool closed = ap && !ap->get_bool();
    for (const auto& kv : o) {
      std::string field = path + "." + std::string(sv(kv.key()));
      const json::value* sub = props ? props->get_object().if_contains(kv.key()) : nullptr;
      if (!sub) {
        if (closed) return fail(field, "unknown field");
        continue;
      }
      MNEMO_RETURN_IF_ERROR(validate_value(impl, sub->get_object(), kv.value(), field));
    }
  } else if (type == "string") {
    if (!v.is_string()) return fail(path, "expected a string, got " + got);
    size_t len = utf8_length(v.get_string());
    if (const json::value* m = get(s, "minLength"); m && len < count(*m))
      return fail(path, "must be at least " + std::to_string(count(*m)) + " characters long");
    if (const json::value* m = get(s, "maxLength"); m && len > count(*m))
      return fail(path, "must be at most " + std::to_string(count(*m)) + " characters long");
    if (const json::value* p = get(s, "pattern")) {
      const re2::RE2& re = *impl.patterns.find(sv(p->get_string()))->second;
      const json::string_view text = v.get_string();
      if (!re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), re))
        return fail(path, "must match the pattern " + internal::py_json(*p));
    }
  } else if (type == "integer" || type == "number") {
    if (type == "integer" ? !is_integral(v) : !v.is_number())
      return fail(path, "expected " + std::string(type == "integer" ? "an integer" : "a number") +
                            ", got " + got);
    double x = v.to_number<double>();
    if (const json::value* m = get(s, "minimum"); m && x < m->to_number<double>())
      return fail(path, "must be >= " + internal::py_json(*m));
    if (const json::value* m = get(s, "maximum"); m && x > m->to_number<double>())
      return fail(path, "must be <= " + internal::py_json(*m));
    if (const json::value* m = get(s, "exclusiveMinimum"); m && x <= m->to_number<double>())
      return fail(path, "must be > " + internal::py_json(*m));
    if (const json::value* m = get(s, "exclusiveMaximum"); m && x >= m->to_number<double>())
      return fail(path, "must be < " + internal::py_json(*m));
    if (const json::value* m = get(s, "multipleOf")) {
      const double q = x / m->to_number<double>();
      if (std::fabs(q - std::round(q)) > 1e-9 * std::max(1.0, std::fabs(q)))
        return fail(path, "must be a multiple of " + internal::py_json(*m));
    }
  } else if (type == "boolean") {
    if (!v.is_bool()) return fail(path, "expected a boolean, got " + got);
  } else if (type == "array") {
    if (!v.is_array()) return fail(path, "expected an array, got " + got);
    const json::array& a = v.get_array();
    if (const json::value* m = get(s, "minItems"); m && a.size() < count(*m))
      return fail(path, "must have at least " + std::to_string(count(*m)) + " items");
    if (const json::value* m = get(s, "maxItems"); m && a.size() > count(*m))
      return fail(path, "must have at most " + std::to_string(count(*m)) + " items");
    if (const json::value* items = get(s, "items")) {
      for (size_t i = 0; i < a.size(); ++i)
        MNEMO_RETURN_IF_ERROR(validate_value(impl, items->get_object(), a[i],
                                             path + "[" + std::to_string(i) + "]"));
    }
    if (const json::value* u = get(s, "uniqueItems"); u && u->get_bool()) {
      for (size_t i = 0; i < a.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
          if (a[i] == a[j])
            return fail(path + "[" + std::to_string(i) + "]",
                        "repeats item " + std::to_string(j) + " (uniqueItems)");
        }
      }
    }
  }
  if (const json::value* e = get(s, "enum")) {
    bool found = false;
    for (const json::value& option : e->get_array()) found = found || option == v;
    if (!found) return fail(path, "must be one of " + internal::py_json(*e));
  }
  if (const json::value* c = get(s, "const"); c && !(*c == v))
    return fail(path, "must be " + internal::py_json(*c));
  return Status::ok();
}

}  // namespace

JsonSchema::JsonSchema(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonSchema::~JsonSchema() = default;
JsonSchema::JsonSchema(JsonSchema&&) noexcept = default;
JsonSchema& JsonSchema::operator=(JsonSchema&&) noexcept = default;

Result<JsonSchema> JsonSchema::parse(std::string_view schema_json) {
  Result<json::value> v = internal::parse_json(schema_json, "the parameters schema");
  if (!v) return v.status();
  auto impl = std::make_unique<Impl>();
  MNEMO_RETURN_IF_ERROR(check_schema(*v, "parameters", *impl));
  impl->schema = std::move(*v);
  return JsonSchema(std::move(impl));
}

Status JsonSchema::validate(std::string_view value_json) const {
  Result<json::value> v = internal::parse_json(value_json, "arguments");
  if (!v) return v.status();
  return validate_value(*impl_, impl_->schema.get_object(), *v, "arguments");
}

}  // namespace mnemo::tools
