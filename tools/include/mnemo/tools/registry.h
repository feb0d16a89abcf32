#pragma once
// The tools a session may call, by name: lookup, argument validation, and the declarations the chat
// codec renders into the prompt.
#include <mnemo/base/status.h>
#include <mnemo/tools/json_schema.h>
#include <mnemo/tools/tool.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::tools {

class ToolRegistry {
 public:
  // Refuses a duplicate name, a name outside [A-Za-z0-9_-]{1,64} and a schema outside the subset.
  Status add(std::shared_ptr<Tool> tool);
  std::shared_ptr<Tool> find(std::string_view name) const;
  std::vector<std::string> names() const;  // in registration order

  // An unknown tool, arguments that are not JSON or fail the schema: an error naming the field.
  Status validate(const ToolCall& call) const;
  // Validates, then runs; every failure (validation included) is an error result for the model.
  boost::asio::awaitable<ToolResult> run(ToolCall call, ToolContext& ctx) const;

  // [{"type": "function", "function": {"name", "description", "parameters"}}, ...] in Python
  // json.dumps style, registration order: the `tools` of an OpenAI chat request.
  std::string tools_json() const;
  // Each tool's `function` object alone (inference::Conversation::tool_schemas).
  std::vector<std::string> function_schemas() const;

 private:
  struct Entry {
    std::shared_ptr<Tool> tool;
    JsonSchema schema;
    std::string function_json;
  };
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

}  // namespace mnemo::tools
