// Answers of an OpenAI-compatible server: streamed chunks, whole bodies, model lists and error
// bodies, read with simdjson's DOM. Unknown fields are ignored (llama-server adds `timings`).
#include <mnemo/inference/remote_client.h>
#include <simdjson.h>

#include "remote_events.h"

namespace mnemo::inference {
namespace {

using simdjson::dom::element;

// One parser per thread: chunks are small and many, and a parser keeps its buffers.
simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

std::string excerpt(std::string_view text, size_t at) {
  constexpr size_t kBefore = 24, kAfter = 24;
  size_t from = at > kBefore ? at - kBefore : 0;
  return std::string(text.substr(from, std::min(text.size(), at + kAfter) - from));
}

Status malformed(std::string_view text, std::string_view where, simdjson::error_code error) {
  std::string m = std::string(where) + ": malformed JSON";
  size_t at = json_error_offset(text);
  if (at != std::string_view::npos) {
    m += " at byte " + std::to_string(at) + " of the chunk, near '" + excerpt(text, at) + "'";
  }
  return Status::corruption(m + " (" + simdjson::error_message(error) + ")");
}

Status field_error(std::string_view where, std::string_view path, std::string_view what) {
  return Status::corruption(std::string(where) + ": " + std::string(path) + ": " +
                            std::string(what));
}

// A string or null field; `present` says whether it held a string.
Status read_text(const element& object, std::string_view key, std::string_view where,
                 std::string_view path, std::string_view& out, bool& present) {
  present = false;
  element e;
  if (object[key].get(e) || e.is_null()) return Status::ok();
  if (e.get_string().get(out)) {
    return field_error(where, std::string(path) + "." + std::string(key),
                       "expected a string or null");
  }
  present = true;
  return Status::ok();
}

// `arguments` is JSON text in a string; some servers send the object itself.
Status read_arguments(const element& function, std::string_view where, std::string_view path,
                      std::string& out, bool& present) {
  present = false;
  element e;
  if (function["arguments"].get(e) || e.is_null()) return Status::ok();
  std::string_view s;
  if (!e.get_string().get(s)) {
    out.assign(s);
  } else if (e.is_object()) {
    out = simdjson::minify(e);
  } else {
    return field_error(where, std::string(path) + ".arguments", "expected a string or an object");
  }
  present = true;
  return Status::ok();
}

void read_usage(const element& root, RemoteUsage& usage) {
  element u;
  if (root["usage"].get(u) || !u.is_object()) return;
  int64_t n = 0;
  if (!u["prompt_tokens"].get_int64().get(n)) usage.prompt_tokens = n;
  if (!u["completion_tokens"].get_int64().get(n)) usage.completion_tokens = n;
}

// An OpenAI error object ({"message", "type", "code"}) as "TYPE: MESSAGE", or a plain message.
std::string describe_error(const element& error, bool* has_kind = nullptr) {
  if (has_kind) *has_kind = false;
  std::string_view s;
  if (!error.get_string().get(s)) return std::string(s);
  std::string kind, message;
  if (!error["type"].get_string().get(s)) kind = s;
  element code;
  if (kind.empty() && !error["code"].get(code) && !code.is_null()) {
    kind =
        code.is_string() ? std::string(code.get_string().value_unsafe()) : simdjson::minify(code);
  }
  if (!error["message"].get_string().get(s)) message = s;
  if (message.empty()) message = simdjson::minify(error);
  if (has_kind) *has_kind = !kind.empty();
  return kind.empty() ? message : kind + ": " + message;
}

Status read_choice0(const element& root, std::string_view where, element& choice, bool& found) {
  found = false;
  element choices;
  // A usage-only chunk may carry an empty array or none at all.
  if (root["choices"].get(choices) || choices.is_null()) return Status::ok();
  simdjson::dom::array items;
  if (choices.get_array().get(items)) return field_error(where, "choices", "expected an array");
  size_t position = 0;
  for (element c : items) {
    int64_t index = static_cast<int64_t>(position++);
    if (!c.is_object()) return field_error(where, "choices[]", "expected an object");
    if (c["index"].get_int64().get(index)) index = static_cast<int64_t>(position - 1);
    if (index != 0) continue;
    choice = c;
    found = true;
    return Status::ok();
  }
  return Status::ok();
}

Status read_reasoning(const element& object, std::string_view where, std::string_view path,
                      std::string_view& out, bool& present) {
  MNEMO_RETURN_IF_ERROR(read_text(object, "reasoning_content", where, path, out, present));
  if (present) return Status::ok();
  return read_text(object, "reasoning", where, path, out, present);
}

}  // namespace

Status ChatChunkAccumulator::add(std::string_view chunk_json, std::string_view where,
                                 std::vector<ChatEvent>& events) {
  element root;
  if (auto error = thread_parser().parse(chunk_json.data(), chunk_json.size()).get(root)) {
    return malformed(chunk_json, where, error);
  }
  if (!root.is_object()) return Status::corruption(std::string(where) + ": expected a JSON object");
  element error;
  if (!root["error"].get(error) && !error.is_null()) {
    return Status::io_error(std::string(where) +
                            ": the server sent an error: " + describe_error(error));
  }
  read_usage(root, result_.usage);
  element choice;
  bool found = false;
  MNEMO_RETURN_IF_ERROR(read_choice0(root, where, choice, found));
  if (!found) return Status::ok();

  element delta;
  if (!choice["delta"].get(delta) && delta.is_object()) {
    std::string_view text;
    bool present = false;
    MNEMO_RETURN_IF_ERROR(read_reasoning(delta, where, "choices[0].delta", text, present));
    if (present && !text.empty()) {
      result_.message.reasoning_content.append(text);
      events.push_back(remote::delta_event(ChatEventKind::kReasoningDelta, std::string(text)));
    }
    MNEMO_RETURN_IF_ERROR(read_text(delta, "content", where, "choices[0].delta", text, present));
    if (present && !text.empty()) {
      result_.message.content.append(text);
      events.push_back(remote::delta_event(ChatEventKind::kTextDelta, std::string(text)));
    }
    element calls;
    if (!delta["tool_calls"].get(calls) && !calls.is_null()) {
      simdjson::dom::array items;
      if (calls.get_array().get(items)) {
        return field_error(where, "choices[0].delta.tool_calls", "expected an array");
      }
      size_t position = 0;
      for (element call : items) {
        std::string path = "choices[0].delta.tool_calls[" + std::to_string(position) + "]";
        if (!call.is_object()) return field_error(where, path, "expected an object");
        // Servers that omit `index` send one call per array position.
        int64_t index = static_cast<int64_t>(position++);
        if (call["index"].get_int64().get(index)) index = static_cast<int64_t>(position - 1);
        auto [slot, is_new] = tool_slots_.try_emplace(index, result_.message.tool_calls.size());
        if (is_new) result_.message.tool_calls.push_back(remote::function_call());
        ToolCall& tool = result_.message.tool_calls[slot->second];
        MNEMO_RETURN_IF_ERROR(read_text(call, "id", where, path, text, present));
        if (present && !text.empty()) tool.id.assign(text);
        element function;
        std::string arguments;
        bool has_arguments = false;
        if (!call["function"].get(function) && function.is_object()) {
          MNEMO_RETURN_IF_ERROR(
              read_text(function, "name", where, path + ".function", text, present));
          if (present) tool.name.append(text);
          MNEMO_RETURN_IF_ERROR(
              read_arguments(function, where, path + ".function", arguments, has_arguments));
        }
        if (is_new) {
          events.push_back(remote::tool_begin_event(slot->second, tool));
        }
        if (has_arguments && !arguments.empty()) {
          tool.arguments.append(arguments);
          events.push_back(remote::delta_event(ChatEventKind::kToolCallArgsDelta,
                                               std::move(arguments), slot->second));
        }
      }
    }
  }
  std::string_view finish;
  if (!choice["finish_reason"].get_string().get(finish)) result_.finish_reason.assign(finish);
  return Status::ok();
}

RemoteChatResult ChatChunkAccumulator::finish(std::vector<ChatEvent>& events) {
  if (!tools_ended_) {
    tools_ended_ = true;
    for (size_t i = 0; i < result_.message.tool_calls.size(); ++i) {
      events.push_back(remote::tool_end_event(i, result_.message.tool_calls[i]));
    }
  }
  return result_;
}

Status RemoteStreamDecoder::push(std::string_view bytes, std::vector<ChatEvent>& events) {
  if (!failed_.is_ok()) return failed_;
  pending_.clear();
  sse_.push(bytes, pending_);
  for (const SseEvent& event : pending_) {
    std::string where =
        "chunk " + std::to_string(event.number) + " at stream byte " + std::to_string(event.offset);
    Status status = accumulator_.add(event.data, where, events);
    if (!status.is_ok()) {
      failed_ = status;
      return status;
    }
  }
  return Status::ok();
}

Result<RemoteChatResult> RemoteStreamDecoder::finish(std::vector<ChatEvent>& events) {
  if (!failed_.is_ok()) return failed_;
  if (!sse_.done()) {
    std::string counts = " after " + std::to_string(sse_.events()) + " complete chunks (" +
                         std::to_string(sse_.bytes()) + " bytes)";
    if (sse_.in_event()) {
      return Status::corruption("stream cut inside an event, without the [DONE] sentinel," +
                                counts);
    }
    return Status::corruption("stream ended without the [DONE] sentinel" + counts);
  }
  return accumulator_.finish(events);
}

Result<RemoteChatResult> parse_chat_completion(std::string_view body) {
  constexpr std::string_view kWhere = "chat completion body";
  element root;
  if (auto error = thread_parser().parse(body.data(), body.size()).get(root)) {
    return malformed(body, kWhere, error);
  }
  if (!root.is_object())
    return Status::corruption(std::string(kWhere) + ": expected a JSON object");
  element error;
  if (!root["error"].get(error) && !error.is_null()) {
    return Status::io_error(std::string(kWhere) +
                            ": the server sent an error: " + describe_error(error));
  }
  RemoteChatResult result;
  read_usage(root, result.usage);
  element choice;
  bool found = false;
  MNEMO_RETURN_IF_ERROR(read_choice0(root, kWhere, choice, found));
  if (!found) return field_error(kWhere, "choices", "no choice with index 0");
  element message;
  if (choice["message"].get(message) || !message.is_object()) {
    return field_error(kWhere, "choices[0].message", "expected an object");
  }
  std::string_view text;
  bool present = false;
  MNEMO_RETURN_IF_ERROR(read_text(message, "content", kWhere, "choices[0].message", text, present));
  result.message.content.assign(text);
  MNEMO_RETURN_IF_ERROR(read_reasoning(message, kWhere, "choices[0].message", text, present));
  result.message.reasoning_content.assign(text);
  element calls;
  if (!message["tool_calls"].get(calls) && !calls.is_null()) {
    simdjson::dom::array items;
    if (calls.get_array().get(items)) {
      return field_error(kWhere, "choices[0].message.tool_calls", "expected an array");
    }
    size_t position = 0;
    for (element call : items) {
      std::string path = "choices[0].message.tool_calls[" + std::to_string(position++) + "]";
      element function;
      if (!call.is_object() || call["function"].get(function) || !function.is_object()) {
        return field_error(kWhere, path, "expected an object with a `function` object");
      }
      ToolCall tool = remote::function_call();
      MNEMO_RETURN_IF_ERROR(read_text(call, "id", kWhere, path, text, present));
      tool.id.assign(text);
      MNEMO_RETURN_IF_ERROR(read_text(function, "name", kWhere, path + ".function", text, present));
      if (!present || text.empty()) return field_error(kWhere, path + ".function.name", "missing");
      tool.name.assign(text);
      MNEMO_RETURN_IF_ERROR(
          read_arguments(function, kWhere, path + ".function", tool.arguments, present));
      result.message.tool_calls.push_back(std::move(tool));
    }
  }
  if (!choice["finish_reason"].get_string().get(text)) result.finish_reason.assign(text);
  return result;
}

Result<std::vector<std::string>> parse_model_list(std::string_view body) {
  constexpr std::string_view kWhere = "model list";
  element root;
  if (auto error = thread_parser().parse(body.data(), body.size()).get(root)) {
    return malformed(body, kWhere, error);
  }
  simdjson::dom::array data;
  if (root["data"].get_array().get(data)) return field_error(kWhere, "data", "expected an array");
  std::vector<std::string> ids;
  for (element model : data) {
    std::string_view id;
    if (model["id"].get_string().get(id))
      return field_error(kWhere, "data[].id", "expected a string");
    ids.emplace_back(id);
  }
  return ids;
}

Status remote_http_error(std::string_view url, long http_status, std::string_view body) {
  std::string m = "remote " + std::string(url) + ": HTTP " + std::to_string(http_status);
  element root, error;
  bool parsed = !thread_parser().parse(body.data(), body.size()).get(root) && root.is_object();
  bool has_kind = false;
  if (parsed && !root["error"].get(error) && !error.is_null()) {
    std::string text = describe_error(error, &has_kind);
    m += (has_kind ? " " : ": ") + text;
  } else if (parsed && root["message"].is_string()) {
    // vLLM's older ErrorResponse puts message and type at the top level.
    std::string text = describe_error(root, &has_kind);
    m += (has_kind ? " " : ": ") + text;
  } else if (parsed && !root["detail"].get(error)) {
    m += ": " + (error.is_string() ? std::string(error.get_string().value_unsafe())
                                   : simdjson::minify(error));
  } else {
    std::string_view start = body.substr(0, 300);
    while (!start.empty() && (start.back() == '\n' || start.back() == '\r')) start.remove_suffix(1);
    if (!start.empty()) m += ": " + std::string(start) + (body.size() > 300 ? "..." : "");
  }
  if (http_status == 404) return Status::not_found(m);
  if (http_status >= 400 && http_status < 500) return Status::invalid_argument(m);
  return Status::io_error(m);
}

}  // namespace mnemo::inference
