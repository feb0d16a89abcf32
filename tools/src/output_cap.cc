#include <mnemo/tools/output_cap.h>

namespace mnemo::tools {
namespace {

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Moves a cut point back so that it does not split a UTF-8 sequence.
size_t back_to_boundary(std::string_view s, size_t at) {
  while (at > 0 && at < s.size() && is_continuation(s[at])) --at;
  return at;
}

}  // namespace

std::string truncation_marker(size_t cut_bytes) {
  return "[... " + std::to_string(cut_bytes) +
         " bytes truncated; full output stored, search_history finds it ...]";
}

CappedText cap_text(std::string_view text, size_t cap) {
  if (text.size() <= cap) return {std::string(text), 0};
  // Head and tail both matter: a command's errors are usually at the end.
  size_t head_end = back_to_boundary(text, cap / 2);
  size_t tail_begin = text.size() - (cap - cap / 2);
  while (tail_begin < text.size() && is_continuation(text[tail_begin])) ++tail_begin;
  size_t cut = tail_begin - head_end;
  CappedText out;
  out.cut_bytes = cut;
  out.text.reserve(cap + 96);
  out.text.append(text.substr(0, head_end));
  out.text += '\n';
  out.text += truncation_marker(cut);
  out.text += '\n';
  out.text.append(text.substr(tail_begin));
  return out;
}

}  // namespace mnemo::tools
