// The DeepSeek-V3-family prompt: the Jinja chat_template of the V3 tokenizer_config.json, quirks
// kept (system prompts hoisted, first-call/first-output flags never reset, tools never rendered).
#include <mnemo/inference/chat.h>
#include <mnemo/inference/special_tokens.h>

namespace mnemo::inference {
namespace {

constexpr std::string_view kToolCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kToolCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kToolCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kToolCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kToolSep = "<｜tool▁sep｜>";
constexpr std::string_view kToolOutputsBegin = "<｜tool▁outputs▁begin｜>";
constexpr std::string_view kToolOutputsEnd = "<｜tool▁outputs▁end｜>";
constexpr std::string_view kToolOutputBegin = "<｜tool▁output▁begin｜>";
constexpr std::string_view kToolOutputEnd = "<｜tool▁output▁end｜>";

std::string at(size_t index) { return "messages[" + std::to_string(index) + "]"; }

// The template concatenates content with `+`, which fails on null, a missing field or a list.
Status require_text(const ChatMessage& m, size_t index) {
  if (m.content_kind == ContentKind::kText) return Status::ok();
  return Status::invalid_argument(at(index) + ".content: the v3 codec needs a string for a " +
                                  std::string(chat_role_name(m.role)) + " message");
}

Status append_call(const ToolCall& call, const std::string& path, std::string& out) {
  if (!call.type) return Status::invalid_argument(path + ".type: required by the v3 codec");
  out.append(*call.type).append(kToolSep).append(call.name);
  out.append("\n```json\n").append(call.arguments).append("\n```").append(kToolCallEnd);
  return Status::ok();
}

}  // namespace

Result<std::string> render_v3_prompt(const Conversation& conv) {
  std::string out(tokens::kBos);
  bool first_system = true;
  for (size_t i = 0; i < conv.messages.size(); ++i) {
    const ChatMessage& m = conv.messages[i];
    if (m.role == ChatRole::kLatestReminder) {
      return Status::invalid_argument(at(i) + ".role: latest_reminder is a v4-only role");
    }
    if (m.role != ChatRole::kSystem) continue;
    MNEMO_RETURN_IF_ERROR(require_text(m, i));
    if (!first_system) out.append("\n\n");
    out.append(m.content);
    first_system = false;
  }

  // The three flags of the template: the first two are never reset.
  bool first_call_done = false;
  bool first_output_done = false;
  bool in_tool_outputs = false;
  for (size_t i = 0; i < conv.messages.size(); ++i) {
    const ChatMessage& m = conv.messages[i];
    switch (m.role) {
      case ChatRole::kUser:
        MNEMO_RETURN_IF_ERROR(require_text(m, i));
        in_tool_outputs = false;
        out.append(tokens::kUser).append(m.content);
        break;
      case ChatRole::kAssistant:
        if (m.content_kind == ContentKind::kNull) {
          in_tool_outputs = false;
          for (size_t k = 0; k < m.tool_calls.size(); ++k) {
            std::string path = at(i) + ".tool_calls[" + std::to_string(k) + "]";
            if (!first_call_done) {
              out.append(tokens::kAssistant).append(kToolCallsBegin).append(kToolCallBegin);
              MNEMO_RETURN_IF_ERROR(append_call(m.tool_calls[k], path, out));
              first_call_done = true;
            } else {
              out.append("\n").append(kToolCallBegin);
              MNEMO_RETURN_IF_ERROR(append_call(m.tool_calls[k], path, out));
              out.append(kToolCallsEnd).append(tokens::kEos);
            }
          }
        } else {
          // With content, the template ignores the turn's tool calls.
          MNEMO_RETURN_IF_ERROR(require_text(m, i));
          if (in_tool_outputs) {
            out.append(kToolOutputsEnd);
            in_tool_outputs = false;
          } else {
            out.append(tokens::kAssistant);
          }
          out.append(m.content).append(tokens::kEos);
        }
        break;
      case ChatRole::kTool:
        MNEMO_RETURN_IF_ERROR(require_text(m, i));
        in_tool_outputs = true;
        if (!first_output_done) {
          out.append(kToolOutputsBegin);
          first_output_done = true;
        } else {
          out.append("\n");
        }
        out.append(kToolOutputBegin).append(m.content).append(kToolOutputEnd);
        break;
      case ChatRole::kSystem:
      case ChatRole::kLatestReminder: break;
    }
  }
  if (in_tool_outputs) out.append(kToolOutputsEnd);
  if (conv.add_generation_prompt && !in_tool_outputs) out.append(tokens::kAssistant);
  return out;
}

}  // namespace mnemo::inference
