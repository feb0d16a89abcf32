#pragma once
// The DSML tags of DeepSeek-V4 tool calls, exactly as the model writes them. `｜DSML｜` (U+FF5C
// bars) is the only special token among them; the angle brackets and names are plain text.
#include <string_view>

namespace mnemo::inference::dsml {

// The opening tag without its ">": a tool block is recognised only after a blank line.
inline constexpr std::string_view kToolCallsStart = "\n\n<｜DSML｜tool_calls";
inline constexpr std::string_view kToolCallsOpen = "<｜DSML｜tool_calls>";
inline constexpr std::string_view kToolCallsClose = "</｜DSML｜tool_calls>";
inline constexpr std::string_view kInvokeOpen = "<｜DSML｜invoke";
inline constexpr std::string_view kInvokeClose = "</｜DSML｜invoke";
inline constexpr std::string_view kParameterOpen = "<｜DSML｜parameter";
inline constexpr std::string_view kParameterClose = "</｜DSML｜parameter";

inline constexpr std::string_view kToolResultOpen = "<tool_result>";
inline constexpr std::string_view kToolResultClose = "</tool_result>";

}  // namespace mnemo::inference::dsml
