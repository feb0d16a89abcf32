#pragma once
// A POST /v1/chat/completions body, checked field by field: errors name the field (OpenAI's
// `param`) and, for text that is not JSON, the byte where it broke.
#include <mnemo/inference/chat.h>
#include <mnemo/inference/sampler.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mnemo::server {

struct ApiError {
  unsigned status = 400;
  std::string message;
  std::string type;  // empty: from the status
  std::string param;
  std::string code;
};

enum class ToolChoice { kAuto, kNone, kRequired, kNamed };

struct CompletionRequest {
  std::optional<std::string> model;
  bool stream = false;
  bool include_usage = false;
  // The conversation as parse_conversation_json reads it (messages, tools, thinking_mode,
  // reasoning_effort).
  std::string conversation_json;
  std::vector<std::string> tools;  // each tool as JSON text
  std::vector<std::string> tool_names;
  ToolChoice tool_choice = ToolChoice::kAuto;
  std::string forced_tool;  // kNamed
  bool parallel_tool_calls = true;
  inference::SamplingParams sampling;
  bool has_seed = false;
  std::optional<int64_t> max_tokens;
  std::vector<std::string> stop;
  inference::ThinkingMode thinking = inference::ThinkingMode::kChat;
  // Hex SHA-256 of the body: tool-call ids, the completion id and the default seed derive from it.
  std::string digest;
};

// Fills `out`; the error (400) when the body is not a valid request.
std::optional<ApiError> parse_completion_request(std::string_view body, CompletionRequest& out);

}  // namespace mnemo::server
