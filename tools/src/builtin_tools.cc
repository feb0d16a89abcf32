#include <mnemo/tools/builtin_tools.h>

namespace mnemo::tools {

Status add_builtin_tools(ToolRegistry& registry, const BuiltinOptions& options) {
  for (std::shared_ptr<Tool> tool :
       {make_shell_tool(), make_read_file_tool(options.files), make_write_file_tool(options.files),
        make_list_dir_tool(options.files), make_http_get_tool(options.http),
        make_search_history_tool()}) {
    MNEMO_RETURN_IF_ERROR(registry.add(std::move(tool)));
  }
  return Status::ok();
}

}  // namespace mnemo::tools
