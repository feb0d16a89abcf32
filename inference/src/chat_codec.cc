// The codec registry and the small shared pieces of the chat API.
#include <mnemo/inference/chat.h>

namespace mnemo::inference {

std::string_view chat_role_name(ChatRole role) {
  switch (role) {
    case ChatRole::kSystem: return "system";
    case ChatRole::kUser: return "user";
    case ChatRole::kAssistant: return "assistant";
    case ChatRole::kTool: return "tool";
    case ChatRole::kLatestReminder: return "latest_reminder";
  }
  return "unknown";
}

std::string_view thinking_mode_name(ThinkingMode mode) {
  return mode == ThinkingMode::kThinking ? "thinking" : "chat";
}

Result<ThinkingMode> parse_thinking_mode(std::string_view name) {
  if (name == "chat") return ThinkingMode::kChat;
  if (name == "thinking") return ThinkingMode::kThinking;
  return Status::invalid_argument("unknown thinking mode '" + std::string(name) +
                                  "' (use chat or thinking)");
}

std::string_view chat_event_kind_name(ChatEventKind kind) {
  switch (kind) {
    case ChatEventKind::kTextDelta: return "message.delta";
    case ChatEventKind::kReasoningDelta: return "reasoning.delta";
    case ChatEventKind::kToolCallBegin: return "tool_call.begin";
    case ChatEventKind::kToolCallArgsDelta: return "tool_call.args.delta";
    case ChatEventKind::kToolCallEnd: return "tool_call.end";
    case ChatEventKind::kEndOfTurn: return "end_of_turn";
    case ChatEventKind::kError: return "error";
  }
  return "unknown";
}

std::string ChatMessage::content_text() const {
  if (content_kind == ContentKind::kText) return content;
  if (content_kind != ContentKind::kParts) return "";
  std::string out;
  for (size_t i = 0; i < content_parts.size(); ++i) {
    if (i) out.append("\n\n");
    out.append(content_parts[i]);
  }
  return out;
}

namespace {

class V4Codec final : public ChatCodec {
 public:
  std::string_view name() const override { return "v4"; }
  Result<std::string> render(const Conversation& conversation) const override {
    return render_v4_prompt(conversation);
  }
  Result<std::unique_ptr<ChatOutputParser>> make_output_parser(ThinkingMode mode) const override {
    return make_v4_output_parser(mode);
  }
};

class V3Codec final : public ChatCodec {
 public:
  std::string_view name() const override { return "v3"; }
  Result<std::string> render(const Conversation& conversation) const override {
    return render_v3_prompt(conversation);
  }
  Result<std::unique_ptr<ChatOutputParser>> make_output_parser(ThinkingMode) const override {
    return Status::unsupported("the v3 codec has no output parser yet");
  }
};

}  // namespace

Result<std::unique_ptr<ChatCodec>> make_chat_codec(std::string_view name) {
  if (name == "v4") return std::unique_ptr<ChatCodec>(std::make_unique<V4Codec>());
  if (name == "v3") return std::unique_ptr<ChatCodec>(std::make_unique<V3Codec>());
  return Status::invalid_argument("unknown chat codec '" + std::string(name) + "' (known: v4, v3)");
}

}  // namespace mnemo::inference
