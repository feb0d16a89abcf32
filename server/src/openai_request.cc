#include "openai_request.h"

#include <boost/json.hpp>

#include <mnemo/base/sha256.h>

namespace mnemo::server {
namespace json = boost::json;
namespace {

ApiError field_error(std::string param, std::string message) {
  return {400, param + ": " + message, "invalid_request_error", param, "invalid_value"};
}

// Line and column (1-based) of a byte offset, for JSON syntax errors.
std::string where(std::string_view text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "byte " + std::to_string(offset) + " (line " + std::to_string(line) + ", column " +
         std::to_string(col) + ")";
}

std::optional<ApiError> parse_json(std::string_view body, json::value& out) {
  json::stream_parser p;
  boost::system::error_code ec;
  const size_t n = p.write_some(body.data(), body.size(), ec);
  if (!ec && n < body.size()) {
    ec = json::error::extra_data;
  }
  if (!ec) p.finish(ec);
  if (ec) {
    return ApiError{400,
                    "the body is not valid JSON: " + ec.message() + " at " +
                        where(body, ec == json::error::incomplete ? body.size() : n),
                    "invalid_request_error", "", "invalid_json"};
  }
  out = p.release();
  return std::nullopt;
}

std::optional<ApiError> read_number(const json::object& o, const char* key, double lo, double hi,
                                    std::optional<double>& out) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_number()) return field_error(key, "expected a number");
  double d = v->to_number<double>();
  if (d < lo || d > hi) {
    return field_error(key, "expected a number from " + json::serialize(json::value(lo)) + " to " +
                                json::serialize(json::value(hi)) + ", got " + json::serialize(*v));
  }
  out = d;
  return std::nullopt;
}

std::optional<ApiError> read_bool(const json::object& o, const char* key, bool& out) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_bool()) return field_error(key, "expected true or false");
  out = v->as_bool();
  return std::nullopt;
}

std::optional<ApiError> read_positive(const json::object& o, const char* key,
                                      std::optional<int64_t>& out) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_int64() && !v->is_uint64()) return field_error(key, "expected an integer");
  int64_t n = v->is_int64() ? v->as_int64() : static_cast<int64_t>(v->as_uint64());
  if (n < 1) return field_error(key, "expected at least 1, got " + std::to_string(n));
  out = n;
  return std::nullopt;
}

// User and system messages may give their content as text parts; the codec takes text.
std::optional<ApiError> flatten_messages(json::array& messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string path = "messages[" + std::to_string(i) + "]";
    json::object* m = messages[i].if_object();
    if (!m) return field_error(path, "expected an object");
    const json::value* role = m->if_contains("role");
    json::value* content = m->if_contains("content");
    if (!role || !role->is_string() || role->as_string() == "tool" || !content ||
        !content->is_array()) {
      continue;
    }
    std::string text;
    for (size_t j = 0; j < content->as_array().size(); ++j) {
      const json::value& part = content->as_array()[j];
      const json::value* t = part.is_object() ? part.as_object().if_contains("text") : nullptr;
      if (!t || !t->is_string()) {
        return field_error(path + ".content[" + std::to_string(j) + "]",
                           "only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
      }
      if (!text.empty()) text += "\n\n";
      text += t->as_string();
    }
    *content = json::string(text);
  }
  return std::nullopt;
}

std::optional<ApiError> read_tools(const json::object& o, CompletionRequest& out) {
  const json::value* v = o.if_contains("tools");
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_array()) return field_error("tools", "expected an array");
  for (size_t i = 0; i < v->as_array().size(); ++i) {
    const std::string path = "tools[" + std::to_string(i) + "]";
    const json::value& tool = v->as_array()[i];
    const json::object* t = tool.if_object();
    const json::value* type = t ? t->if_contains("type") : nullptr;
    if (!t || !type || !type->is_string() || type->as_string() != "function") {
      return field_error(path, "expected {\"type\": \"function\", \"function\": {...}}");
    }
    const json::value* fn = t->if_contains("function");
    const json::value* name =
        fn && fn->is_object() ? fn->as_object().if_contains("name") : nullptr;
    if (!name || !name->is_string() || name->as_string().empty()) {
      return field_error(path + ".function.name", "expected the function's name");
    }
    out.tool_names.emplace_back(name->as_string());
    out.tools.push_back(json::serialize(tool));
  }
  return std::nullopt;
}

std::optional<ApiError> read_tool_choice(const json::object& o, CompletionRequest& out) {
  const json::value* v = o.if_contains("tool_choice");
  out.tool_choice = out.tools.empty() ? ToolChoice::kNone : ToolChoice::kAuto;
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_string()) {
    const json::string& s = v->as_string();
    if (s == "auto") {
      out.tool_choice = ToolChoice::kAuto;
    } else if (s == "none") {
      out.tool_choice = ToolChoice::kNone;
    } else if (s == "required") {
      out.tool_choice = ToolChoice::kRequired;
    } else {
      return field_error("tool_choice", "expected \"auto\", \"none\", \"required\" or "
                                        "{\"type\": \"function\", \"function\": {\"name\": ...}}, "
                                        "got \"" + std::string(s) + "\"");
    }
  } else {
    const json::value* fn = v->is_object() ? v->as_object().if_contains("function") : nullptr;
    const json::value* name =
        fn && fn->is_object() ? fn->as_object().if_contains("name") : nullptr;
    if (!name || !name->is_string()) {
      return field_error("tool_choice", "expected {\"type\": \"function\", \"function\": "
                                        "{\"name\": ...}}");
    }
    out.tool_choice = ToolChoice::kNamed;
    out.forced_tool = name->as_string();
    if (std::find(out.tool_names.begin(), out.tool_names.end(), out.forced_tool) ==
        out.tool_names.end()) {
      return field_error("tool_choice", "no function named '" + out.forced_tool + "' in tools");
    }
  }
  if ((out.tool_choice == ToolChoice::kRequired || out.tool_choice == ToolChoice::kNamed) &&
      out.tools.empty()) {
    return field_error("tool_choice", "a tool call is required but the request has no tools");
  }
  return std::nullopt;
}

std::optional<ApiError> read_stop(const json::object& o, CompletionRequest& out) {
  const json::value* v = o.if_contains("stop");
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_string()) {
    if (!v->as_string().empty()) out.stop.emplace_back(v->as_string());
    return std::nullopt;
  }
  if (!v->is_array() || v->as_array().size() > 4) {
    return field_error("stop", "expected a string or an array of up to 4 strings");
  }
  for (const json::value& s : v->as_array()) {
    if (!s.is_string()) return field_error("stop", "expected strings");
    if (!s.as_string().empty()) out.stop.emplace_back(s.as_string());
  }
  return std::nullopt;
}

// `thinking: {"type": "enabled"}` or a reasoning_effort turns thinking on (DeepSeek's API).
std::optional<ApiError> read_thinking(const json::object& o, CompletionRequest& out,
                                      json::value& effort) {
  effort = nullptr;
  if (const json::value* t = o.if_contains("thinking"); t && !t->is_null()) {
    const json::value* type = t->is_object() ? t->as_object().if_contains("type") : nullptr;
    if (!type || !type->is_string() ||
        (type->as_string() != "enabled" && type->as_string() != "disabled")) {
      return field_error("thinking", "expected {\"type\": \"enabled\"} or {\"type\": \"disabled\"}");
    }
    if (type->as_string() == "enabled") out.thinking = inference::ThinkingMode::kThinking;
  }
  if (const json::value* e = o.if_contains("reasoning_effort"); e && !e->is_null()) {
    if (!e->is_string()) return field_error("reasoning_effort", "expected a string");
    const json::string& s = e->as_string();
    if (s == "max" || s == "xhigh") {
      effort = "max";
    } else if (s != "high" && s != "medium" && s != "low" && s != "minimal") {
      return field_error("reasoning_effort",
                         "expected \"minimal\", \"low\", \"medium\", \"high\" or \"max\"");
    }
    out.thinking = inference::ThinkingMode::kThinking;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_completion_request(std::string_view body, CompletionRequest& out) {
  out.digest = to_hex(sha256(body));
  json::value root;
  if (auto e = parse_json(body, root)) return e;
  json::object* o = root.if_object();
  if (!o) return ApiError{400, "the body must be a JSON object", "invalid_request_error", "", ""};

  if (const json::value* m = o->if_contains("model"); m && !m->is_null()) {
    if (!m->is_string()) return field_error("model", "expected a string");
    out.model = std::string(m->as_string());
  }
  json::value* messages = o->if_contains("messages");
  if (!messages) return field_error("messages", "missing");
  if (!messages->is_array() || messages->as_array().empty()) {
    return field_error("messages", "expected a non-empty array");
  }
  if (auto e = flatten_messages(messages->as_array())) return e;
  if (auto e = read_bool(*o, "stream", out.stream)) return e;
  if (const json::value* so = o->if_contains("stream_options"); so && !so->is_null()) {
    if (!so->is_object()) return field_error("stream_options", "expected an object");
    if (auto e = read_bool(so->as_object(), "include_usage", out.include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }
  if (auto e = read_tools(*o, out)) return e;
  if (auto e = read_tool_choice(*o, out)) return e;
  if (auto e = read_bool(*o, "parallel_tool_calls", out.parallel_tool_calls)) return e;

  std::optional<double> temperature, top_p;
  if (auto e = read_number(*o, "temperature", 0, 2, temperature)) return e;
  if (auto e = read_number(*o, "top_p", 0, 1, top_p)) return e;
  out.sampling.temperature = static_cast<float>(temperature.value_or(1.0));
  out.sampling.top_p = static_cast<float>(top_p.value_or(1.0));
  if (top_p && *top_p == 0) {  // no mass kept: greedy, as OpenAI's API treats it
    out.sampling.temperature = 0;
    out.sampling.top_p = 1;
  }
  if (const json::value* s = o->if_contains("seed"); s && !s->is_null()) {
    if (!s->is_int64() && !s->is_uint64()) return field_error("seed", "expected an integer");
    out.sampling.seed = s->is_int64() ? static_cast<uint64_t>(s->as_int64()) : s->as_uint64();
    out.has_seed = true;
  } else {
    out.sampling.seed = std::stoull(out.digest.substr(0, 16), nullptr, 16);
  }
  std::optional<int64_t> max_tokens, max_completion_tokens, n;
  if (auto e = read_positive(*o, "max_tokens", max_tokens)) return e;
  if (auto e = read_positive(*o, "max_completion_tokens", max_completion_tokens)) return e;
  out.max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;
  if (auto e = read_positive(*o, "n", n)) return e;
  if (n && *n != 1) return field_error("n", "only one choice (n = 1) is supported");
  if (auto e = read_stop(*o, out)) return e;

  json::value effort;
  if (auto e = read_thinking(*o, out, effort)) return e;
  json::object conv;
  conv["messages"] = std::move(*messages);
  if (const json::value* t = o->if_contains("tools"); t && !t->is_null()) conv["tools"] = *t;
  conv["thinking_mode"] = inference::thinking_mode_name(out.thinking);
  conv["reasoning_effort"] = effort;
  out.conversation_json = json::serialize(conv);
  return std::nullopt;
}

}  // namespace mnemo::server
