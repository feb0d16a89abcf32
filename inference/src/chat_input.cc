// Conversation input: JSON text -> Conversation, with simdjson's DOM (which keeps key order).
#include <mnemo/inference/chat.h>
#include <mnemo/inference/chat_json.h>
#include <simdjson.h>

namespace mnemo::inference {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string_view type_name(const element& e) {
  switch (e.type()) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

Status field_error(std::string_view path, std::string_view what) {
  return Status::invalid_argument(std::string(path) + ": " + std::string(what));
}

Status expected(std::string_view path, std::string_view want, const element& got) {
  return field_error(path,
                     "expected " + std::string(want) + ", got " + std::string(type_name(got)));
}

Status read_string(const element& e, std::string_view path, std::string& out) {
  std::string_view s;
  if (e.get_string().get(s)) return expected(path, "a string", e);
  out.assign(s);
  return Status::ok();
}

Status read_optional_string(const element& e, std::string_view path,
                            std::optional<std::string>& out) {
  if (e.is_null()) {
    out.reset();
    return Status::ok();
  }
  std::string_view s;
  if (e.get_string().get(s)) return expected(path, "a string or null", e);
  out = std::string(s);
  return Status::ok();
}

Status read_bool(const element& e, std::string_view path, bool& out) {
  if (e.get_bool().get(out)) return expected(path, "true or false", e);
  return Status::ok();
}

PyJson to_py_json(const element& e) {
  switch (e.type()) {
    case element_type::ARRAY: {
      PyJson arr = PyJson::array();
      simdjson::dom::array items;
      if (e.get_array().get(items)) return arr;
      for (element item : items) arr.push_back(to_py_json(item));
      return arr;
    }
    case element_type::OBJECT: {
      PyJson obj = PyJson::object();
      simdjson::dom::object fields;
      if (e.get_object().get(fields)) return obj;
      for (auto field : fields) {
        obj.set(std::string(field.key), to_py_json(field.value));
      }
      return obj;
    }
    case element_type::INT64: return PyJson::integer(std::to_string(e.get_int64().value_unsafe()));
    case element_type::UINT64:
      return PyJson::integer(std::to_string(e.get_uint64().value_unsafe()));
    case element_type::DOUBLE: return PyJson::floating(e.get_double().value_unsafe());
    case element_type::STRING: return PyJson::string(std::string(e.get_string().value_unsafe()));
    case element_type::BOOL: return PyJson::boolean(e.get_bool().value_unsafe());
    case element_type::NULL_VALUE: return PyJson::null();
  }
  return PyJson::null();
}

Status read_tool_call(const element& e, const std::string& path, ToolCall& call) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj)) return expected(path, "an object", e);
  bool have_function = false;
  for (auto field : obj) {
    std::string fpath = path + "." + std::string(field.key);
    if (field.key == "id") {
      std::optional<std::string> id;
      MNEMO_RETURN_IF_ERROR(read_optional_string(field.value, fpath, id));
      call.id = id.value_or("");
    } else if (field.key == "type") {
      MNEMO_RETURN_IF_ERROR(read_optional_string(field.value, fpath, call.type));
    } else if (field.key == "function") {
      simdjson::dom::object fn;
      if (field.value.get_object().get(fn)) return expected(fpath, "an object", field.value);
      element name, arguments;
      if (fn["name"].get(name)) return field_error(fpath + ".name", "missing");
      if (fn["arguments"].get(arguments)) return field_error(fpath + ".arguments", "missing");
      MNEMO_RETURN_IF_ERROR(read_string(name, fpath + ".name", call.name));
      if (!arguments.is_string()) {
        return expected(fpath + ".arguments", "a string (JSON text)", arguments);
      }
      call.arguments.assign(arguments.get_string().value_unsafe());
      have_function = true;
    }
  }
  if (!have_function) return field_error(path + ".function", "missing");
  return Status::ok();
}

Status read_content(const element& e, const std::string& path, ChatMessage& msg) {
  if (e.is_null()) {
    msg.content_kind = ContentKind::kNull;
    return Status::ok();
  }
  if (e.is_string()) {
    msg.content_kind = ContentKind::kText;
    msg.content.assign(e.get_string().value_unsafe());
    return Status::ok();
  }
  simdjson::dom::array parts;
  if (e.get_array().get(parts)) return expected(path, "a string, null or a list of text parts", e);
  msg.content_kind = ContentKind::kParts;
  size_t i = 0;
  for (element part : parts) {
    std::string ppath = path + "[" + std::to_string(i++) + "]";
    std::string type, text;
    element v;
    if (part.at_key("type").get(v)) return field_error(ppath + ".type", "missing");
    MNEMO_RETURN_IF_ERROR(read_string(v, ppath + ".type", type));
    if (type != "text") {
      return field_error(ppath + ".type", "unsupported part type '" + type + "' (only 'text')");
    }
    if (part.at_key("text").get(v)) return field_error(ppath + ".text", "missing");
    MNEMO_RETURN_IF_ERROR(read_string(v, ppath + ".text", text));
    msg.content_parts.push_back(std::move(text));
  }
  return Status::ok();
}

Result<ChatRole> read_role(const element& e, const std::string& path) {
  std::string role;
  MNEMO_RETURN_IF_ERROR(read_string(e, path, role));
  if (role == "system") return ChatRole::kSystem;
  if (role == "user") return ChatRole::kUser;
  if (role == "assistant") return ChatRole::kAssistant;
  if (role == "tool") return ChatRole::kTool;
  if (role == "latest_reminder") return ChatRole::kLatestReminder;
  return field_error(
      path, "unknown role '" + role + "' (known: system, user, assistant, tool, latest_reminder)");
}

Status read_message(const element& e, const std::string& path, ChatMessage& msg) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj)) return expected(path, "an object", e);
  bool have_role = false;
  for (auto field : obj) {
    std::string fpath = path + "." + std::string(field.key);
    const element& v = field.value;
    if (field.key == "role") {
      auto role = read_role(v, fpath);
      if (!role.is_ok()) return role.status();
      msg.role = *role;
      have_role = true;
    } else if (field.key == "content") {
      msg.content_parts.clear();
      MNEMO_RETURN_IF_ERROR(read_content(v, fpath, msg));
    } else if (field.key == "reasoning_content") {
      MNEMO_RETURN_IF_ERROR(read_optional_string(v, fpath, msg.reasoning_content));
    } else if (field.key == "tool_calls") {
      msg.tool_calls.clear();
      if (v.is_null()) continue;
      simdjson::dom::array calls;
      if (v.get_array().get(calls)) return expected(fpath, "an array or null", v);
      size_t i = 0;
      for (element c : calls) {
        ToolCall call;
        MNEMO_RETURN_IF_ERROR(read_tool_call(c, fpath + "[" + std::to_string(i++) + "]", call));
        msg.tool_calls.push_back(std::move(call));
      }
    } else if (field.key == "tool_call_id") {
      std::optional<std::string> id;
      MNEMO_RETURN_IF_ERROR(read_optional_string(v, fpath, id));
      msg.tool_call_id = id.value_or("");
    } else if (field.key == "wo_eos") {
      MNEMO_RETURN_IF_ERROR(read_bool(v, fpath, msg.wo_eos));
    }
  }
  if (!have_role) return field_error(path + ".role", "missing");
  if (msg.content_kind == ContentKind::kParts && msg.role != ChatRole::kTool) {
    return field_error(path + ".content", "a list of parts is supported only for tool messages");
  }
  return Status::ok();
}

Status read_tools(const element& e, Conversation& conv) {
  conv.tool_schemas.clear();
  if (e.is_null()) return Status::ok();
  simdjson::dom::array tools;
  if (e.get_array().get(tools)) return expected("tools", "an array or null", e);
  size_t i = 0;
  for (element tool : tools) {
    std::string path = "tools[" + std::to_string(i++) + "]";
    if (!tool.is_object()) return expected(path, "an object", tool);
    element fn;
    if (tool.at_key("function").get(fn)) return field_error(path + ".function", "missing");
    if (!fn.is_object()) return expected(path + ".function", "an object", fn);
    element name;
    if (fn.at_key("name").get(name) || !name.is_string()) {
      return field_error(path + ".function.name", "missing or not a string");
    }
    // The V4 encoder prints the `function` object as json.dumps does.
    conv.tool_schemas.push_back(dump_py_json(to_py_json(fn)));
  }
  return Status::ok();
}

}  // namespace

Result<Conversation> parse_conversation_json(std::string_view json_text) {
  simdjson::dom::parser parser;
  element doc;
  if (auto err = parser.parse(json_text.data(), json_text.size()).get(doc)) {
    return Status::invalid_argument(std::string("invalid JSON: ") + simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) return expected("conversation", "an object", doc);
  Conversation conv;
  bool have_messages = false;
  for (auto field : obj) {
    const element& v = field.value;
    if (field.key == "messages") {
      simdjson::dom::array messages;
      if (v.get_array().get(messages)) return expected("messages", "an array", v);
      conv.messages.clear();
      size_t i = 0;
      for (element m : messages) {
        ChatMessage msg;
        MNEMO_RETURN_IF_ERROR(read_message(m, "messages[" + std::to_string(i++) + "]", msg));
        conv.messages.push_back(std::move(msg));
      }
      have_messages = true;
    } else if (field.key == "tools") {
      MNEMO_RETURN_IF_ERROR(read_tools(v, conv));
    } else if (field.key == "thinking_mode") {
      std::string mode;
      MNEMO_RETURN_IF_ERROR(read_string(v, "thinking_mode", mode));
      auto parsed = parse_thinking_mode(mode);
      if (!parsed.is_ok()) return parsed.status().with_context("thinking_mode");
      conv.thinking_mode = *parsed;
    } else if (field.key == "reasoning_effort") {
      MNEMO_RETURN_IF_ERROR(read_optional_string(v, "reasoning_effort", conv.reasoning_effort));
    } else if (field.key == "drop_thinking") {
      MNEMO_RETURN_IF_ERROR(read_bool(v, "drop_thinking", conv.drop_thinking));
    } else if (field.key == "add_generation_prompt") {
      MNEMO_RETURN_IF_ERROR(read_bool(v, "add_generation_prompt", conv.add_generation_prompt));
    }
  }
  if (!have_messages) return field_error("messages", "missing");
  return conv;
}

}  // namespace mnemo::inference
