#pragma once
// ChatEvents of the remote backend, built one way everywhere.
#include <mnemo/inference/chat.h>

#include <string>
#include <utility>

namespace mnemo::inference::remote {

inline ChatEvent delta_event(ChatEventKind kind, std::string text, size_t tool_index = 0) {
  ChatEvent e;
  e.kind = kind;
  e.text = std::move(text);
  e.tool_index = tool_index;
  return e;
}

inline ChatEvent tool_begin_event(size_t tool_index, const ToolCall& tool) {
  ChatEvent e;
  e.kind = ChatEventKind::kToolCallBegin;
  e.tool_index = tool_index;
  e.name = tool.name;
  return e;
}

inline ChatEvent tool_end_event(size_t tool_index, const ToolCall& tool) {
  ChatEvent e = tool_begin_event(tool_index, tool);
  e.kind = ChatEventKind::kToolCallEnd;
  e.arguments = tool.arguments;
  return e;
}

inline ToolCall function_call() {
  ToolCall tool;
  tool.type = "function";
  return tool;
}

}  // namespace mnemo::inference::remote
