// The DeepSeek-V4 prompt format: tool results folded into user turns, DSML tool calls, and
// reasoning kept or dropped per turn, as the official encoding_dsv4.py (first release) renders
// them.
#include <mnemo/inference/chat.h>
#include <mnemo/inference/chat_dsml.h>
#include <mnemo/inference/chat_json.h>
#include <mnemo/inference/special_tokens.h>

#include <algorithm>
#include <unordered_map>

namespace mnemo::inference {
namespace {

constexpr std::string_view kToolsIntro =
    "## Tools\n\n"
    "You have access to a set of tools to help answer the user's question. You can invoke tools by "
    "writing a \"<｜DSML｜tool_calls>\" block like the following:\n\n"
    "<｜DSML｜tool_calls>\n"
    "<｜DSML｜invoke name=\"$TOOL_NAME\">\n"
    "<｜DSML｜parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE"
    "</｜DSML｜parameter>\n"
    "...\n"
    "</｜DSML｜invoke>\n"
    "<｜DSML｜invoke name=\"$TOOL_NAME2\">\n"
    "...\n"
    "</｜DSML｜invoke>\n"
    "</｜DSML｜tool_calls>\n\n"
    "String parameters should be specified as is and set `string=\"true\"`. For all other types "
    "(numbers, booleans, arrays, objects), pass the value in JSON format and set "
    "`string=\"false\"`."
    "\n\n"
    "If thinking_mode is enabled (triggered by <think>), you MUST output your complete reasoning "
    "inside <think>...</think> BEFORE any tool calls or final response.\n\n"
    "Otherwise, output directly after </think> with tool calls or final response.\n\n"
    "### Available Tool Schemas\n\n";

constexpr std::string_view kToolsOutro =
    "\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool "
    "calls.\n";

constexpr std::string_view kEffortMax =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose the problem to "
    "resolve "
    "the root cause, rigorously stress-testing your logic against all potential paths, edge cases, "
    "and adversarial scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting every intermediate step, "
    "considered alternative, and rejected hypothesis to ensure absolutely no assumption is left "
    "unchecked.\n\n";

// One piece of a folded user turn: a user text or a tool result.
struct Piece {
  bool is_tool = false;
  std::string text;
  std::string tool_call_id;
};

// A message after folding runs of user/tool messages into one user turn.
struct Turn {
  ChatRole role = ChatRole::kUser;
  const ChatMessage* message = nullptr;  // null for user turns and the synthetic tools message
  size_t index = 0;                      // position in the input, for errors
  bool has_tools = false;
  std::vector<Piece> pieces;
};

std::string at(size_t index) { return "messages[" + std::to_string(index) + "]"; }

void append_tools_block(const Conversation& conv, std::string& out) {
  out.append(kToolsIntro);
  for (size_t i = 0; i < conv.tool_schemas.size(); ++i) {
    if (i) out.push_back('\n');
    out.append(conv.tool_schemas[i]);
  }
  out.append(kToolsOutro);
}

Status append_parameters(const ToolCall& call, const std::string& path, std::string& out) {
  auto parsed = parse_py_json(call.arguments);
  auto param = [&](std::string_view key, bool is_string, std::string_view value) {
    out.append(dsml::kParameterOpen);
    out.append(" name=\"").append(key).append("\" string=\"");
    out.append(is_string ? "true" : "false").append("\">").append(value);
    out.append(dsml::kParameterClose).push_back('>');
  };
  // Arguments that are not JSON become one string parameter named "arguments".
  if (!parsed.is_ok()) {
    param("arguments", true, call.arguments);
    return Status::ok();
  }
  if (!parsed->is_object()) {
    return Status::invalid_argument(path + ".function.arguments: JSON that is not an object");
  }
  const PyJson& args = *parsed;
  for (size_t i = 0; i < args.keys().size(); ++i) {
    if (i) out.push_back('\n');
    const PyJson& v = args.items()[i];
    if (v.is_string()) {
      param(args.keys()[i], true, v.text());
    } else {
      param(args.keys()[i], false, dump_py_json(v));
    }
  }
  return Status::ok();
}

Status append_tool_calls(const ChatMessage& msg, size_t index, std::string& out) {
  if (msg.tool_calls.empty()) return Status::ok();
  out.append("\n\n").append(dsml::kToolCallsOpen).push_back('\n');
  for (size_t i = 0; i < msg.tool_calls.size(); ++i) {
    const ToolCall& call = msg.tool_calls[i];
    if (i) out.push_back('\n');
    out.append(dsml::kInvokeOpen).append(" name=\"").append(call.name).append("\">\n");
    MNEMO_RETURN_IF_ERROR(
        append_parameters(call, at(index) + ".tool_calls[" + std::to_string(i) + "]", out));
    out.append("\n").append(dsml::kInvokeClose).append(">");
  }
  out.append("\n").append(dsml::kToolCallsClose);
  return Status::ok();
}

Result<std::vector<Turn>> fold_turns(const Conversation& conv) {
  std::vector<Turn> turns;
  size_t start = 0;
  if (!conv.tool_schemas.empty()) {
    // The tools belong to a system message: the first one, or a new empty one in front.
    Turn t;
    t.role = ChatRole::kSystem;
    t.has_tools = true;
    if (!conv.messages.empty() && conv.messages[0].role == ChatRole::kSystem) {
      t.message = &conv.messages[0];
      start = 1;
    }
    turns.push_back(std::move(t));
  }
  for (size_t i = start; i < conv.messages.size(); ++i) {
    const ChatMessage& m = conv.messages[i];
    if (m.role == ChatRole::kUser || m.role == ChatRole::kTool) {
      Piece piece;
      piece.is_tool = m.role == ChatRole::kTool;
      if (piece.is_tool) {
        if (m.content_kind != ContentKind::kText && m.content_kind != ContentKind::kParts) {
          return Status::invalid_argument(at(i) + ".content: a tool message needs text content");
        }
        piece.tool_call_id = m.tool_call_id;
      } else if (m.content_kind != ContentKind::kText) {
        return Status::invalid_argument(at(i) + ".content: a user message needs a string");
      }
      piece.text = m.content_text();
      if (turns.empty() || turns.back().role != ChatRole::kUser) {
        Turn t;
        t.role = ChatRole::kUser;
        t.index = i;
        turns.push_back(std::move(t));
      }
      turns.back().pieces.push_back(std::move(piece));
      continue;
    }
    if (m.role == ChatRole::kLatestReminder && m.content_kind != ContentKind::kText) {
      return Status::invalid_argument(at(i) + ".content: a latest_reminder message needs a string");
    }
    Turn t;
    t.role = m.role;
    t.message = &m;
    t.index = i;
    turns.push_back(std::move(t));
  }
  return turns;
}

// Two or more results in one turn follow the order of the calls of the latest assistant turn that
// made calls (stable; an unknown id counts as position 0).
void sort_tool_results(std::vector<Turn>& turns) {
  std::unordered_map<std::string, size_t> order;
  for (Turn& t : turns) {
    if (t.role == ChatRole::kAssistant && !t.message->tool_calls.empty()) {
      order.clear();
      for (size_t i = 0; i < t.message->tool_calls.size(); ++i) {
        const std::string& id = t.message->tool_calls[i].id;
        if (!id.empty()) order[id] = i;
      }
    } else if (t.role == ChatRole::kUser && !order.empty()) {
      std::vector<Piece> results;
      for (const Piece& p : t.pieces) {
        if (p.is_tool) results.push_back(p);
      }
      if (results.size() < 2) continue;
      auto position = [&](const Piece& p) {
        auto it = order.find(p.tool_call_id);
        return it == order.end() ? size_t{0} : it->second;
      };
      std::stable_sort(results.begin(), results.end(),
                       [&](const Piece& a, const Piece& b) { return position(a) < position(b); });
      size_t next = 0;
      for (Piece& p : t.pieces) {
        if (p.is_tool) p = std::move(results[next++]);
      }
    }
  }
}

}  // namespace

Result<std::string> render_v4_prompt(const Conversation& conv) {
  const auto& effort = conv.reasoning_effort;
  if (effort && *effort != "high" && *effort != "max") {
    return Status::invalid_argument("reasoning_effort: '" + *effort +
                                    "' is not supported by the v4 codec (use null, \"high\" or "
                                    "\"max\")");
  }
  auto folded = fold_turns(conv);
  if (!folded.is_ok()) return folded.status();
  std::vector<Turn>& turns = *folded;
  sort_tool_results(turns);

  const bool thinking = conv.thinking_mode == ThinkingMode::kThinking;
  // Declaring tools turns reasoning dropping off for the whole conversation.
  const bool drop = conv.drop_thinking && conv.tool_schemas.empty();
  std::ptrdiff_t last_user = -1;
  for (size_t i = 0; i < turns.size(); ++i) {
    if (turns[i].role == ChatRole::kUser) last_user = static_cast<std::ptrdiff_t>(i);
  }

  std::string out(tokens::kBos);
  for (size_t i = 0; i < turns.size(); ++i) {
    const Turn& t = turns[i];
    const auto pos = static_cast<std::ptrdiff_t>(i);
    if (i == 0 && thinking && effort == "max") out.append(kEffortMax);
    switch (t.role) {
      case ChatRole::kSystem:
        if (t.message) out.append(t.message->content_text());
        if (t.has_tools) {
          out.append("\n\n");
          append_tools_block(conv, out);
        }
        break;
      case ChatRole::kUser:
        out.append(tokens::kUser);
        for (size_t k = 0; k < t.pieces.size(); ++k) {
          if (k) out.append("\n\n");
          if (t.pieces[k].is_tool) out.append(dsml::kToolResultOpen);
          out.append(t.pieces[k].text);
          if (t.pieces[k].is_tool) out.append(dsml::kToolResultClose);
        }
        break;
      case ChatRole::kLatestReminder:
        out.append(tokens::kLatestReminder).append(t.message->content);
        break;
      case ChatRole::kAssistant: {
        const ChatMessage& m = *t.message;
        // Reasoning before the last user turn is dropped entirely, </think> included.
        if (thinking && (!drop || pos > last_user)) {
          out.append(m.reasoning_content.value_or("")).append(tokens::kThinkEnd);
        }
        out.append(m.content_text());
        MNEMO_RETURN_IF_ERROR(append_tool_calls(m, t.index, out));
        if (!m.wo_eos) out.append(tokens::kEos);
        break;
      }
      case ChatRole::kTool: break;  // folded into user turns
    }
    if (i + 1 < turns.size() && turns[i + 1].role != ChatRole::kAssistant &&
        turns[i + 1].role != ChatRole::kLatestReminder) {
      continue;
    }
    if (t.role == ChatRole::kUser) {
      out.append(tokens::kAssistant);
      bool open_thinking = thinking && (!drop || pos >= last_user);
      out.append(open_thinking ? tokens::kThinkBegin : tokens::kThinkEnd);
    }
  }
  return out;
}

}  // namespace mnemo::inference
