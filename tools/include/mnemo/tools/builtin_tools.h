#pragma once
// The built-in tools: shell (in the sandbox), read_file / write_file / list_dir (confined to the
// workspace), http_get (allowlisted hosts, public addresses only by default) and search_history.
#include <mnemo/base/status.h>
#include <mnemo/tools/registry.h>
#include <mnemo/tools/tool.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace mnemo::tools {

struct FileToolOptions {
  size_t max_read_bytes = 1u << 20;   // read_file reads at most this much per call
  size_t max_write_bytes = 8u << 20;  // write_file refuses larger content
  size_t max_entries = 1000;          // list_dir lists at most this many
};

struct HttpGetOptions {
  // Hosts a URL may name: "example.com" exactly, "*.example.com" for its subdomains, "*" for any.
  // Empty: every host is refused.
  std::vector<std::string> allowed_hosts;
  // Private (RFC 1918, CGNAT, ULA), loopback, link-local and other non-public addresses are refused,
  // on the address actually connected to, unless this is set.
  bool allow_private_addresses = false;
  // Single addresses exempted from that rule ("127.0.0.1", "::1"), for a known local service.
  std::vector<std::string> allowed_addresses;
  // Hosts (exact names or addresses, never wildcards) whose connections may go to non-public
  // addresses: a job lists "localhost" or "10.0.0.5" on purpose.
  std::vector<std::string> private_hosts;
  size_t max_bytes = 1u << 20;  // a larger body is an error, the transfer stops at the cap
  std::chrono::milliseconds timeout{30000};  // whole call, redirects included
  int max_redirects = 5;
};

std::shared_ptr<Tool> make_shell_tool();

// A tool a job defines: `command` runs with /bin/bash -c in the sandbox (workspace mounted, the same
// limits as shell) and receives the call's arguments as JSON text in $MNEMO_ARGS, its id in
// $MNEMO_CALL_ID.
struct CommandToolSpec {
  std::string name;
  std::string description;
  std::string parameters_json;  // JSON schema of the arguments object
  std::string command;
  bool idempotent = false;
};
std::shared_ptr<Tool> make_command_tool(CommandToolSpec spec);
std::shared_ptr<Tool> make_read_file_tool(FileToolOptions options = {});
std::shared_ptr<Tool> make_write_file_tool(FileToolOptions options = {});
std::shared_ptr<Tool> make_list_dir_tool(FileToolOptions options = {});
std::shared_ptr<Tool> make_http_get_tool(HttpGetOptions options);
std::shared_ptr<Tool> make_search_history_tool();

struct BuiltinOptions {
  FileToolOptions files;
  HttpGetOptions http;
};

// Registers every built-in tool.
Status add_builtin_tools(ToolRegistry& registry, const BuiltinOptions& options = {});

}  // namespace mnemo::tools
