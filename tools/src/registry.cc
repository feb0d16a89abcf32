#include <mnemo/tools/registry.h>

#include <boost/asio/this_coro.hpp>
#include <boost/json/value.hpp>

#include "py_json.h"

namespace mnemo::tools {
namespace {

namespace json = boost::json;

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Status ToolRegistry::add(std::shared_ptr<Tool> tool) {
  if (!tool) return Status::invalid_argument("tools: no tool given");
  std::string name(tool->name());
  if (!valid_name(name))
    return Status::invalid_argument("tools: '" + name +
                                    "' is not a valid tool name ([A-Za-z0-9_-], 1 to 64)");
  if (by_name_.count(name)) return Status::invalid_argument("tools: '" + name + "' is already registered");
  Result<JsonSchema> schema = JsonSchema::parse(tool->parameters());
  if (!schema) return schema.status().with_context("tools: " + name);
  Result<json::value> params = internal::parse_json(tool->parameters(), "parameters");
  if (!params) return params.status();
  json::object fn;
  fn["name"] = name;
  fn["description"] = std::string(tool->description());
  fn["parameters"] = std::move(*params);
  by_name_.emplace(name, entries_.size());
  entries_.push_back({std::move(tool), std::move(*schema), internal::py_json(fn)});
  return Status::ok();
}

std::shared_ptr<Tool> ToolRegistry::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : entries_[it->second].tool;
}

std::vector<std::string> ToolRegistry::names() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.emplace_back(e.tool->name());
  return out;
}

Status ToolRegistry::validate(const ToolCall& call) const {
  auto it = by_name_.find(call.name);
  if (it == by_name_.end()) {
    std::string known;
    for (const Entry& e : entries_) known += (known.empty() ? "" : ", ") + std::string(e.tool->name());
    return Status::not_found("unknown tool '" + call.name + "' (available: " + known + ")");
  }
  return entries_[it->second].schema.validate(call.arguments).with_context(call.name);
}

boost::asio::awaitable<ToolResult> ToolRegistry::run(ToolCall call, ToolContext& ctx) const {
  Status st = validate(call);
  if (!st) co_return ToolResult::error(st.message());
  std::shared_ptr<Tool> tool = find(call.name);
  // Checked here so that an already cancelled call is a result, not Asio's operation_aborted throw.
  auto cs = co_await boost::asio::this_coro::cancellation_state;
  if (cs.cancelled() != boost::asio::cancellation_type::none)
    co_return ToolResult::error(call.name + ": cancelled before it started");
  // A named awaitable: GCC 12 mishandles temporaries inside a co_await expression.
  auto running = tool->run(std::move(call), ctx);
  co_return co_await std::move(running);
}

std::string ToolRegistry::tools_json() const {
  std::string out = "[";
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (i) out += ", ";
    out += "{\"type\": \"function\", \"function\": " + entries_[i].function_json + "}";
  }
  return out + "]";
}

std::vector<std::string> ToolRegistry::function_schemas() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.function_json);
  return out;
}

}  // namespace mnemo::tools
