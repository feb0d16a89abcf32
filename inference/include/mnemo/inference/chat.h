#pragma once
// Chat codecs: a conversation (OpenAI-style messages + tools + options) rendered to the exact
// prompt text of a model family, and the model's generated text parsed back, incrementally, into an
// assistant message. "v4" is the DeepSeek-V4 format (DSML tool calls), "v3" the V3-family template.
// Both match the golden data in tests/data/chat byte for byte.
#include <mnemo/base/status.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::inference {

enum class ChatRole { kSystem, kUser, kAssistant, kTool, kLatestReminder };
std::string_view chat_role_name(ChatRole role);

enum class ThinkingMode { kChat, kThinking };
std::string_view thinking_mode_name(ThinkingMode mode);
// "chat" or "thinking"; anything else is an error naming the value.
Result<ThinkingMode> parse_thinking_mode(std::string_view name);

struct ToolCall {
  std::string id;                   // empty when absent (parsed calls never have one)
  std::optional<std::string> type;  // "function"; V3 prints it, V4 ignores it
  std::string name;
  std::string arguments;  // JSON text, normally an object
};

// How a message gave its `content`: the V3 template tells a missing field from null.
enum class ContentKind { kMissing, kNull, kText, kParts };

struct ChatMessage {
  ChatRole role = ChatRole::kUser;
  ContentKind content_kind = ContentKind::kMissing;
  std::string content;                     // kText
  std::vector<std::string> content_parts;  // kParts: the `text` of each part (tool messages only)
  std::optional<std::string> reasoning_content;
  std::vector<ToolCall> tool_calls;
  std::string tool_call_id;
  bool wo_eos = false;  // V4 extension: an assistant turn left open (prefill)

  // The content as one string: parts joined with "\n\n", null and missing as "".
  std::string content_text() const;
};

struct Conversation {
  std::vector<ChatMessage> messages;
  // Each tool's `function` object, already serialised in Python json.dumps style, in input order.
  std::vector<std::string> tool_schemas;
  ThinkingMode thinking_mode = ThinkingMode::kChat;
  // V4: null, "high" or "max"; kept as given so the codec can reject other values.
  std::optional<std::string> reasoning_effort;
  bool drop_thinking = true;
  // V3: append "<｜Assistant｜>" at the end.
  bool add_generation_prompt = false;
};

// Parses a conversation object ({"messages", "tools", "thinking_mode", "reasoning_effort",
// "drop_thinking", "add_generation_prompt"}) from JSON text. Errors name the field, e.g.
// "messages[2].role: unknown role 'foo'". Unknown keys are ignored (OpenAI requests carry many).
Result<Conversation> parse_conversation_json(std::string_view json_text);

// Renders the whole prompt, BOS included.
Result<std::string> render_v4_prompt(const Conversation& conversation);
Result<std::string> render_v3_prompt(const Conversation& conversation);

struct AssistantMessage {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCall> tool_calls;  // type "function", no id
};

enum class ChatEventKind {
  kTextDelta,          // text: more content
  kReasoningDelta,     // text: more reasoning
  kToolCallBegin,      // tool_index, name
  kToolCallArgsDelta,  // tool_index, text: more of the arguments JSON
  kToolCallEnd,        // tool_index, name, arguments (the complete JSON text)
  kEndOfTurn,          // the turn ended well; message() is final
  kError,              // text: what was wrong; raw: the generated text so far
};
std::string_view chat_event_kind_name(ChatEventKind kind);

struct ChatEvent {
  ChatEventKind kind = ChatEventKind::kTextDelta;
  std::string text;
  size_t tool_index = 0;
  std::string name;
  std::string arguments;
  std::string raw;
};

// Incremental parser of one generated assistant turn. Text comes in pieces of any size (a piece may
// split a marker anywhere); only text that could still begin a marker is held back. Every stream
// ends with exactly one kEndOfTurn or kError; after an error the rest of the input is ignored.
// Tool calls are final only at kEndOfTurn: a later error voids the whole turn.
class ChatOutputParser {
 public:
  virtual ~ChatOutputParser() = default;
  // Appends the events this piece completes to `events`.
  virtual void push(std::string_view piece, std::vector<ChatEvent>& events) = 0;
  // Ends the stream: emits kEndOfTurn, or kError when the text is incomplete or malformed.
  virtual void finish(std::vector<ChatEvent>& events) = 0;
  // The message assembled so far (complete after kEndOfTurn).
  virtual const AssistantMessage& message() const = 0;
  virtual bool failed() const = 0;
  // Everything pushed so far.
  virtual const std::string& raw_text() const = 0;
};

// The V4 output parser. It follows the official parser except where it is deliberately stricter: a
// tool-call block must be complete (closing tags present), and a string="false" value must be JSON.
std::unique_ptr<ChatOutputParser> make_v4_output_parser(ThinkingMode mode);

// Parses a whole V4 completion (the text after the prompt) in one go.
Result<AssistantMessage> parse_v4_completion(std::string_view text, ThinkingMode mode);

class ChatCodec {
 public:
  virtual ~ChatCodec() = default;
  virtual std::string_view name() const = 0;
  virtual Result<std::string> render(const Conversation& conversation) const = 0;
  // A parser for this codec's generated text, or an error when the codec has none.
  virtual Result<std::unique_ptr<ChatOutputParser>> make_output_parser(ThinkingMode mode) const = 0;
};

// "v4" or "v3"; anything else is an error listing the known names.
Result<std::unique_ptr<ChatCodec>> make_chat_codec(std::string_view name);

}  // namespace mnemo::inference
