#pragma once
// Capping tool output for the prompt: the head and tail are kept around a marker that says how much
// was cut; the whole text is returned separately so the agent stores it.
#include <cstddef>
#include <string>
#include <string_view>

namespace mnemo::tools {

struct CappedText {
  std::string text;      // at most about `cap` bytes plus the marker, cut on UTF-8 boundaries
  size_t cut_bytes = 0;  // 0: text is the input unchanged
};

// "[... N bytes truncated; full output stored, search_history finds it ...]"
std::string truncation_marker(size_t cut_bytes);

CappedText cap_text(std::string_view text, size_t cap);

}  // namespace mnemo::tools
