#include <mnemo/tools/output_cap.h>
#include <mnemo/tools/tool.h>

namespace mnemo::tools {

ToolResult ToolResult::success(std::string output, size_t cap) {
  CappedText capped = cap_text(output, cap);
  if (capped.cut_bytes == 0) return {true, std::move(output), false, {}, std::nullopt};
  return {true, std::move(capped.text), true, std::move(output), std::nullopt};
}

}  // namespace mnemo::tools
