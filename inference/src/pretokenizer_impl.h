#pragma once
// Inline implementation of pretokenize(); the split runs on every encoded byte, so it stays inlinable.
#include <mnemo/base/utf8.h>

#include <cstdint>
#include <vector>

#include "unicode_class.h"

namespace mnemo::inference {
namespace pretok_detail {

struct Char {
  char32_t cp;
  uint8_t flags;
  uint32_t offset;  // byte offset in the segment
};

inline bool is_letter_or_mark(const Char& c) { return c.flags & (unicode::kLetter | unicode::kMark); }
inline bool is_punct_or_symbol(const Char& c) { return c.flags & (unicode::kPunct | unicode::kSymbol); }
inline bool is_space(const Char& c) { return c.flags & unicode::kSpace; }
inline bool is_newline(const Char& c) { return c.cp == '\r' || c.cp == '\n'; }
inline bool is_ascii_alpha(const Char& c) { return (c.cp | 0x20) >= 'a' && (c.cp | 0x20) <= 'z'; }
inline bool is_ascii_punct(const Char& c) {
  return (c.cp >= 0x21 && c.cp <= 0x2F) || (c.cp >= 0x3A && c.cp <= 0x40) ||
         (c.cp >= 0x5B && c.cp <= 0x60) || (c.cp >= 0x7B && c.cp <= 0x7E);
}

// Length in chars of the main pattern's match at cs[i] (within [i, e)), or 0 when none of its
// alternatives matches there.
inline size_t match_main(const Char* cs, size_t i, size_t e) {
  const Char& c = cs[i];
  bool has_next = i + 1 < e;
  // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+
  if (is_ascii_punct(c) && has_next && is_ascii_alpha(cs[i + 1])) {
    size_t j = i + 2;
    while (j < e && is_ascii_alpha(cs[j])) ++j;
    return j - i;
  }
  // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
  bool optional_ok = !is_newline(c) && !(c.flags & (unicode::kLetter | unicode::kPunct | unicode::kSymbol));
  if ((optional_ok && has_next && is_letter_or_mark(cs[i + 1])) || is_letter_or_mark(c)) {
    size_t j = i + 1;
    while (j < e && is_letter_or_mark(cs[j])) ++j;
    return j - i;
  }
  // " ?[\p{P}\p{S}]+[\r\n]*"
  if (is_punct_or_symbol(c) || (c.cp == ' ' && has_next && is_punct_or_symbol(cs[i + 1]))) {
    size_t j = i + 1;
    while (j < e && is_punct_or_symbol(cs[j])) ++j;
    while (j < e && is_newline(cs[j])) ++j;
    return j - i;
  }
  if (!is_space(c)) return 0;
  size_t run_end = i + 1;
  while (run_end < e && is_space(cs[run_end])) ++run_end;
  // \s*[\r\n]+ : backtracking ends the match at the run's last newline.
  for (size_t j = run_end; j > i; --j) {
    if (is_newline(cs[j - 1])) return j - i;
  }
  // \s+(?!\S) : the whole run at the end, otherwise all but its last char.
  if (run_end == e) return run_end - i;
  if (run_end - i >= 2) return run_end - i - 1;
  return 1;  // \s+
}

// Applies the main pattern to chars [b, e) of text, emitting matches and the gaps between them.
// cs[e] exists (a sentinel at the end), so cs[k].offset is the byte where char k starts for k <= e.
template <typename Emit>
void split_main(std::string_view text, const Char* cs, size_t b, size_t e, Emit& emit) {
  auto piece = [&](size_t from, size_t to) { emit(text.substr(cs[from].offset, cs[to].offset - cs[from].offset)); };
  size_t gap = b;
  size_t i = b;
  while (i < e) {
    size_t n = match_main(cs, i, e);
    if (n == 0) {
      ++i;
      continue;
    }
    if (gap < i) piece(gap, i);
    piece(i, i + n);
    i += n;
    gap = i;
  }
  if (gap < e) piece(gap, e);
}

// Splits chars [b, e) (no \p{N} inside) into CJK runs and the rest, then applies the main pattern.
template <typename Emit>
void split_cjk(std::string_view text, const Char* cs, size_t b, size_t e, Emit& emit) {
  size_t i = b;
  while (i < e) {
    bool cjk = cs[i].flags & unicode::kCjk;
    size_t j = i + 1;
    while (j < e && static_cast<bool>(cs[j].flags & unicode::kCjk) == cjk) ++j;
    split_main(text, cs, i, j, emit);
    i = j;
  }
}

}  // namespace pretok_detail

template <typename Emit>
void pretokenize(std::string_view text, Emit&& emit) {
  using pretok_detail::Char;
  thread_local std::vector<Char> chars;
  chars.clear();
  for (size_t i = 0; i < text.size();) {
    auto offset = static_cast<uint32_t>(i);
    char32_t cp = utf8::next(text, i);
    chars.push_back({cp, unicode::flags(cp), offset});
  }
  size_t n = chars.size();
  chars.push_back({0, 0, static_cast<uint32_t>(text.size())});  // sentinel: the end offset
  const Char* cs = chars.data();
  // \p{N}{1,3}: runs of numbers in chunks of three; such a chunk matches nothing else downstream.
  size_t i = 0;
  while (i < n) {
    if (cs[i].flags & unicode::kNumber) {
      size_t j = i + 1;
      while (j < n && j - i < 3 && (cs[j].flags & unicode::kNumber)) ++j;
      emit(text.substr(cs[i].offset, cs[j].offset - cs[i].offset));
      i = j;
      continue;
    }
    size_t j = i + 1;
    while (j < n && !(cs[j].flags & unicode::kNumber)) ++j;
    pretok_detail::split_cjk(text, cs, i, j, emit);
    i = j;
  }
}

}  // namespace mnemo::inference
